"""Every rule in plain words, from one place: what a centre's data manager reads.

A quarantined value carries the validator's rule (``less_than_or_equal_to(6)``, ``type: a
date (%Y-%m-%d)``, ``isin([...])``) and a check's query its own short text. A person
needs the field by its name in the form, the value, and what is allowed:
"SF-12 item MH3 = 7; allowed 1 to 6". What is allowed is read from the form's own
declaration (``schemas/forms.py``: ranges, codes, required), so the words cannot drift
from the rule that was applied.
"""

from __future__ import annotations

import re
from functools import cache

from schemas.forms import FORMS, UNIT_CONFUSIONS

FORM_LABELS = {
    "inclusion": "Inclusion",
    "follow_up": "Monthly call",
    "ketamine": "Ketamine administration",
    "hads": "HADS",
    "sf12": "SF-12",
    "adverse_events": "Adverse event",
    "treatments": "Concomitant treatment",
}
DATE_FORMATS = {"%Y-%m-%d": "YYYY-MM-DD", "%d/%m/%Y": "DD/MM/YYYY", "%m/%d/%Y": "MM/DD/YYYY"}


def field_label(form: str | None, column: str | None) -> str:
    """A field as the form names it: "SF-12 item MH3", "Monthly call: NPRS"."""
    if not column:
        return FORM_LABELS.get(form or "", form or "record")
    item = column.removeprefix("hads_")
    if form in ("hads", "sf12") and re.fullmatch(r"[a-z]+\d+", item):
        return f"{FORM_LABELS[form]} item {item.upper()}"
    words = {"nprs": "NPRS", "patient_id": "patient id", "dose_mg": "dose (mg)"}
    name = words.get(column, column.replace("_", " "))
    return f"{FORM_LABELS.get(form or '', form or '')}: {name}".strip(": ")


@cache
def allowed(form: str | None, column: str | None) -> str:
    """What the form accepts in ``column``: a range, codes, a type, required or not."""
    schema = _schema(form)
    if schema is None or column not in schema.columns:
        return ""
    spec = schema.columns[column]
    bounds = {check.name: check.statistics for check in spec.checks}
    parts = [_range_text(bounds)] if _range_text(bounds) else []
    if "isin" in bounds:
        codes = sorted(bounds["isin"]["allowed_values"], key=str)
        parts.append("one of " + ", ".join(str(v) for v in codes))
    if not parts:
        parts.append(_type_text(str(spec.dtype).lower()))
    if not spec.nullable:
        parts.append("required")
    return "; ".join(p for p in parts if p)


def _schema(form: str | None):
    model = FORMS.get(form or "")
    return None if model is None else model.schema.to_schema()


def _range_text(bounds: dict[str, dict]) -> str:
    """Pandera's range checks (ge, gt, le, lt, in_range) as one phrase."""
    low = bounds.get("greater_than_or_equal_to", bounds.get("in_range", {})).get("min_value")
    high = bounds.get("less_than_or_equal_to", bounds.get("in_range", {})).get("max_value")
    above = bounds.get("greater_than", {}).get("min_value")
    below = bounds.get("less_than", {}).get("max_value")
    if low is not None and high is not None:
        return f"{_number(low)} to {_number(high)}"
    words = [
        f"at least {_number(low)}" if low is not None else "",
        f"more than {_number(above)}" if above is not None else "",
        f"at most {_number(high)}" if high is not None else "",
        f"less than {_number(below)}" if below is not None else "",
    ]
    return ", ".join(w for w in words if w)


def _number(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _type_text(kind: str) -> str:
    if "date" in kind:
        return "a date"
    if "int" in kind:
        return "a whole number"
    if "float" in kind:
        return "a number"
    return ""


def _staging_problem(rule: str, shown: str, label: str) -> str | None:
    """The rules of a mapping's units and derived columns (``transforms.staging.derive``)
    and of the dose plausibility checks, as a centre is told them."""
    if rule in UNIT_CONFUSIONS:
        return f"{shown}: {UNIT_CONFUSIONS[rule]}"
    return {
        "unknown unit": f"{label}: the unit {shown.split(' = ')[-1]} is unknown",
        "unit missing": f"{label}: the unit is missing",
        "birth date unreadable": "the birth date is not a readable date",
    }.get(rule)


def quarantine_problem(form: str, column: str | None, rule: str, value: str | None) -> str:
    """A quarantined value's problem in words (the value shown, the rule explained)."""
    label = field_label(form, column.split(",")[0].strip() if column else None)
    shown = f"{label} = {value}" if value not in (None, "") else label
    if rule.startswith("type: a date"):
        fmt = re.search(r"\((.+)\)", rule)
        expected = DATE_FORMATS.get(fmt.group(1), fmt.group(1)) if fmt else "a date"
        return f"{shown} is not a date in the form {expected}"
    if rule.startswith("type: an integer"):
        return f"{shown} is not a whole number"
    if rule.startswith("type:"):
        return f"{shown} is not {rule.removeprefix('type:').strip()}"
    if rule in ("not_nullable", "required"):
        return f"{label} is missing"
    if rule == "not_in_future":
        return f"{shown} is in the future"
    staging = _staging_problem(rule, shown, label)
    if staging:
        return staging
    if rule == "unknown code" or rule.startswith("isin("):
        return f"{shown} is not one of the form's codes"
    if rule.startswith("conflicting duplicate"):
        return f"two rows for the same {column} with different values: keep the right one"
    if rule.startswith(("less_than", "greater_than", "in_range")):
        return f"{shown} is out of range"
    return shown if not rule else f"{shown}: {rule}"


def check_problem(month: int | None, problem: str) -> str:
    """A check's query in words: its own text, with the month named when it has one."""
    text = problem[0].upper() + problem[1:] if problem else problem
    return f"Month {month}: {problem}" if month is not None else text


def form_of_table(table: str | None) -> str | None:
    """The form whose warehouse table is ``table`` (a check names its table)."""
    for name, form in FORMS.items():
        if form.table == table:
            return name
    return None

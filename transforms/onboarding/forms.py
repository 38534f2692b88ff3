"""Every form one file holds: the form it is named for, then each form its other columns show.

A patients file may hold the inclusion columns, the pain of every month in wide columns
(``Pain_M00..Pain_M12``) and the HADS items (``Q1..Q14``): three forms read from one file
(two form mappings may share a file pattern). The form the file is named for (or, failing
a name, the one it matches best) comes first; then, as long as one does, the form that
takes the most of the columns no form took yet. A form beside the first needs:

* ``MIN_EVIDENCE`` source columns besides the patient id (a wide family counts each of its
  columns): one lone column ('Date', 'Poids') is no form;
* a column of the form's own measure (not only a patient id, a month or a date), and, for
  a questionnaire, at least half its items (``MIN_ITEMS``): Q1..Q5 are not a HADS.

The patient id and visit (month) columns are shared by every form of the file; each other
column is read by one form only, so that a form's TODO list names only the columns no form
took. Columns matched by one word of their name, or whose values do not fit (text in a
number column), are no evidence.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from schemas.forms import FORMS, HADS_ITEMS, SF12_RANGES
from transforms.onboarding.files import FileProfile
from transforms.onboarding.matching import guess_form, suggest_mapping
from transforms.onboarding.rows import (
    EXTRACT_NUMBER,
    doses_with_their_unit,
    hads_by_subscale,
    rows_without_values,
)

ITEMS = {*HADS_ITEMS, *SF12_RANGES}
MIN_EVIDENCE = 2
MIN_ITEMS = {"hads": len(HADS_ITEMS) // 2, "sf12": len(SF12_RANGES) // 2}
# read by every form of a file: the patient's id, and in a long file the visit of each row
SHARED = ("patient_id", "derived.patient_id.columns", "month")


def forms_of_file(profile: FileProfile) -> dict[str, dict[str, Any]]:
    """Form -> its suggestion (``matching.suggest_mapping``), the file's main form first."""
    best = guess_form(profile)
    candidates = {f: suggest_mapping(profile.columns, f) for f in FORMS} if best else {}
    chosen: dict[str, dict[str, Any]] = {}
    while best is not None:
        chosen[best] = candidates.pop(best)
        _note_rivals(best, chosen[best], candidates)
        taken = _taken(chosen)
        rest = [c for c in profile.columns if c.name not in taken or c.identifier]
        candidates = {f: suggest_mapping(rest, f) for f in FORMS if f not in chosen}
        strong = {f: s for f, s in candidates.items() if _strong_enough(f, s)}
        best = max(strong, key=lambda f: evidence(strong[f])[0]) if strong else None
    _leave_out_taken(chosen)
    for suggestion in chosen.values():
        _units_inside_values(suggestion, profile)
        _items_by_subscale(suggestion, profile)
        _skip_empty_rows(suggestion, profile)
        _skip_rows_without_values(suggestion, profile)
    return chosen


def _units_inside_values(suggestion: dict[str, Any], profile: FileProfile) -> None:
    """Doses written with their unit ('25 mg', '0,5 mg/kg'): the number extracted, the unit
    read from the same cell (``units: {dose_mg: {column: <it>}}``)."""
    if suggestion["form"] != "ketamine" or profile.rows is None:
        return
    source = doses_with_their_unit(suggestion, profile.rows)
    if source is None or suggestion["mapping"]["units"].get("dose_mg"):
        return
    mapping = suggestion["mapping"]
    mapping["columns"] = {
        ("dose_mg" if s == source else c): s for c, s in mapping["columns"].items()
    }
    mapping["units"] = {"dose_mg": {"column": source, "codes": {}}}
    mapping["extract"] = {"dose_mg": EXTRACT_NUMBER}
    suggestion["notes"]["units.dose_mg"] = (
        f"the unit of each row, written in {source!r} after the dose: mg/kg and ug/kg "
        "rows land in dose_mg_per_kg"
    )
    suggestion["todo"] = [t for t in suggestion["todo"] if "most values are not numbers" not in t]
    suggestion["unmatched"] = [c for c in suggestion["unmatched"] if c != "dose_mg_per_kg"]
    commas = profile.rows[source].str.contains(r"^\s*\d+,\d").any()
    if commas and getattr(profile.format, "decimal", ".") != ",":
        suggestion["todo"].append(
            f"TODO: {source!r} writes doses with a decimal comma ('0,5 mg/kg'): set the "
            "format's decimal to ','"
        )


def _items_by_subscale(suggestion: dict[str, Any], profile: FileProfile) -> None:
    """HADS items numbered by subscale (1-7 anxiety), as the file's own totals show."""
    if suggestion["form"] != "hads" or profile.rows is None:
        return
    items = hads_by_subscale(suggestion, profile.rows)
    if items is None:
        return
    columns = suggestion["mapping"]["columns"]
    columns.update(items)
    suggestion["sources"] |= {source: canonical for canonical, source in items.items()}
    suggestion["todo"] = [t for t in suggestion["todo"] if "questionnaire's order" not in t]
    suggestion["todo"].append(
        "TODO-check: numbered items read by subscale (1-7 anxiety, 8-14 depression): the "
        "file's own anxiety and depression totals are the sums of items 1-7 and 8-14"
    )


def evidence(suggestion: dict[str, Any]) -> tuple[int, int]:
    """(source columns read besides the patient id, of which columns of the measure)."""
    form = suggestion["form"]
    dtypes = FORMS[form].columns()
    read = [c for c in suggestion["evidence"].values() if c in dtypes and c != "patient_id"]
    measures = [c for c in read if c != "month" and dtypes[c] != pl.Date]
    return len(read), len(measures)


def _strong_enough(form: str, suggestion: dict[str, Any]) -> bool:
    read, measures = evidence(suggestion)
    return read >= MIN_EVIDENCE and measures >= MIN_ITEMS.get(form, 1)


def _taken(chosen: dict[str, dict[str, Any]]) -> set[str]:
    """Source columns read by a chosen form, except those every form shares."""
    return {
        source
        for suggestion in chosen.values()
        for source, what in suggestion["sources"].items()
        if what not in SHARED
    }


def _note_rivals(form: str, suggestion: dict[str, Any], others: dict[str, dict]) -> None:
    """Columns another form reads as well, as strongly (Q1..Q12: HADS or SF-12?): say so."""
    mine = _taken({form: suggestion})
    for other, theirs in others.items():
        rival = _strong_enough(other, theirs) and evidence(theirs)[0] == evidence(suggestion)[0]
        if rival and mine & _taken({other: theirs}):
            suggestion["todo"].append(
                f"TODO-check: these columns read as well as {other}: which form are they?"
            )


def _leave_out_taken(chosen: dict[str, dict[str, Any]]) -> None:
    """A column another form of the file reads is not this form's TODO (nor a birth date
    another form reads for the age: the reader exempts it for every form of the file)."""
    for form, suggestion in chosen.items():
        others = _taken({f: s for f, s in chosen.items() if f != form})
        suggestion["unmapped"] = {
            source: reason
            for source, reason in suggestion["unmapped"].items()
            if source not in others  # a birth date read for the age is exempt in all
        }


def _skip_empty_rows(suggestion: dict[str, Any], profile: FileProfile) -> None:
    """A questionnaire filled at some visits only, in a file of every visit: its rows at
    the other visits hold no answer, and are no record of it (``empty_rows: skip``)."""
    if suggestion["form"] not in MIN_ITEMS or suggestion["mapping"]["layout"] != "long":
        return
    items = [s for s, c in suggestion["sources"].items() if c in ITEMS]
    missing = min((c.n_missing for c in profile.columns if c.name in items), default=0)
    if items and missing * 2 >= profile.n_rows:
        suggestion["mapping"]["empty_rows"] = "skip"
        suggestion["notes"]["empty_rows"] = (
            f"TODO-check: each item is empty on {missing} or more of {profile.n_rows} rows "
            "(visits without the questionnaire?): a row with no answer is no record"
        )


def _skip_rows_without_values(suggestion: dict[str, Any], profile: FileProfile) -> None:
    """A file of every scheduled visit (a SAS visit grid): rows where the form has no
    value at all are visits with nothing recorded, not missing answers."""
    if suggestion["form"] == "inclusion" or suggestion["mapping"]["layout"] != "long":
        return
    if "empty_rows" in suggestion["mapping"] or profile.rows is None:
        return
    empty = rows_without_values(suggestion, profile.rows)
    if empty:
        suggestion["mapping"]["empty_rows"] = "skip"
        suggestion["notes"]["empty_rows"] = (
            f"TODO-check: {empty} of {profile.n_rows} rows hold none of the form's values "
            "(visits with nothing recorded?): a row with no value is no record"
        )

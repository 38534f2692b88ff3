"""A column giving each row's unit, beside a dose or a weight, drafted as a unit per row.

A ketamine log may write ``Dose`` and, in the next column, ``Unit`` (``mg`` or ``mg/kg``):
read as one unit, every mg/kg dose would load as mg. Such a column is recognised by its
values (most of them units of the family, as ``staging.rules.normalise_unit`` reads them)
and drafted as ``units: {dose_mg: {column: Unit}}``, so that each row's unit decides where
its value lands. A spelling the reader does not know is drafted as a code with no unit and
a TODO: the mapping does not load until a person says which unit it is.
"""

from __future__ import annotations

from schemas.forms import MAX_PLAUSIBLE_DOSE_MG_PER_KG, MIN_PLAUSIBLE_DOSE_MG
from transforms.onboarding.columns import ColumnProfile
from transforms.onboarding.suggestion import FormDraft
from transforms.onboarding.vocabulary import NOT_A_DOSE, UNIT_SPELLINGS, name_key, tokens
from transforms.staging.rules import UNIT_TABLE, normalise_unit

UNIT_SHARE = 0.8  # of a column's values that must be units of the family to be its units
NAMED_UNIT_SHARE = 0.5  # enough when the column's name says it holds units
UNIT_NAMES = {
    "unit",
    "units",
    "unite",
    "unites",
    "uom",
    "unitedose",
    "doseunit",
    "eenheid",
    "einheit",
}
# canonical column a unit column is drafted for -> the canonical columns it may sit beside
FAMILIES = {"dose_mg": ("dose_mg", "dose_mg_per_kg"), "weight_kg": ("weight_kg",)}


def draft_row_units(draft: FormDraft, usable: list[ColumnProfile]) -> None:
    """For each dose or weight column read, the nearest column of its family's units; a
    dose with one unit for all rows whose values look like the other unit, a TODO."""
    _find_unit_columns(draft, usable)
    if draft.form == "ketamine" and not draft.row_units:
        _doses_in_the_other_unit(draft, {p.name: p for p in usable})


def _doses_in_the_other_unit(draft: FormDraft, by_name: dict[str, ColumnProfile]) -> None:
    """mg/kg read as mg is the classic unit error of this drug: say it before a night does
    (the reader quarantines such doses)."""
    for canonical, source in draft.columns.items():
        profile, unit = by_name[source], draft.units.get(canonical)
        low, high = profile.minimum, profile.maximum
        if not (isinstance(low, float) and isinstance(high, float)):  # numbers only
            continue
        if canonical == "dose_mg" and unit is None and high < MIN_PLAUSIBLE_DOSE_MG:
            draft.todo.append(
                f"TODO-check: dose_mg: every dose in {source!r} is under "
                f"{MIN_PLAUSIBLE_DOSE_MG} ({low:g} to {high:g}): doses per kg? map it as "
                "dose_mg_per_kg"
            )
        if canonical == "dose_mg_per_kg" and low > MAX_PLAUSIBLE_DOSE_MG_PER_KG:
            draft.todo.append(
                f"TODO-check: dose_mg_per_kg: every dose in {source!r} is over "
                f"{MAX_PLAUSIBLE_DOSE_MG_PER_KG} ({low:g} to {high:g}): doses in mg? map it "
                "as dose_mg"
            )


def _find_unit_columns(draft: FormDraft, usable: list[ColumnProfile]) -> None:
    names = [p.name for p in usable]
    for key, beside in FAMILIES.items():
        canonical = next((c for c in beside if c in draft.columns), None)
        if canonical is None:
            continue
        taken = draft.sources()
        candidates = [p for p in usable if p.name not in taken and _holds_units(p, key)]
        if not candidates:
            continue
        position = names.index(draft.columns[canonical])
        unit = min(candidates, key=lambda p: abs(names.index(p.name) - position))
        _draft_unit_column(draft, key, canonical, unit)


def _holds_units(profile: ColumnProfile, family: str) -> bool:
    """Most values are units of the family (half will do under a name such as 'Unit')."""
    named = bool(UNIT_NAMES.intersection(tokens(profile.name)))
    named |= name_key(profile.name).endswith("dosu")  # CDISC EXDOSU, CMDOSU
    return unit_share(profile, family) >= (NAMED_UNIT_SHARE if named else UNIT_SHARE)


def unit_share(profile: ColumnProfile, family: str) -> float:
    """The share of a column's values that are units of ``family`` (0 when its values are
    too many to be listed, or when none is a unit)."""
    total = sum(n for _, n in profile.value_counts)
    known = sum(n for v, n in profile.value_counts if normalise_unit(v) in UNIT_TABLE[family])
    return known / total if total and known else 0.0


def _draft_unit_column(draft: FormDraft, key: str, canonical: str, unit: ColumnProfile) -> None:
    """``units.<key>: {column, codes}``, the value column read as ``key`` (the family's
    column: a row's unit decides where its value lands), notes and TODOs."""
    if canonical != key:  # 'Dose (mg/kg)' beside a unit column: the rows' units decide
        draft.columns = {key if c == canonical else c: s for c, s in draft.columns.items()}
    for column in FAMILIES[key]:  # a unit read from the header no longer applies
        draft.units.pop(column, None)
        draft.notes.pop(f"units.{column}", None)
    known = UNIT_TABLE[key]
    unknown = [v for v, _ in unit.value_counts if normalise_unit(v) not in known]
    spelt = {v: UNIT_SPELLINGS.get(name_key(v)) for v in unknown}
    codes = {v: u for v, u in spelt.items() if u != NOT_A_DOSE and (u is None or u in known)}
    draft.row_units[key] = {"column": unit.name, "codes": codes}
    draft.read_by_rule(unit.name, f"units.{key}")
    seen = ", ".join(f"{v!r} x{n}" for v, n in unit.value_counts)
    note = f"the unit of each row, from {unit.name!r} (seen: {seen})"
    if key == "dose_mg":
        note += "; mg/kg and ug/kg rows land in dose_mg_per_kg"
    draft.notes[f"units.{key}"] = note
    for value in unknown:
        _note_spelling(draft, key, value, spelt[value], list(known))
    if unit.n_missing:
        draft.todo.append(
            f"TODO-check: {unit.n_missing} row(s) without a unit in {unit.name!r}: their "
            f"{key} is quarantined (unit missing)"
        )


def _note_spelling(draft: FormDraft, key: str, value: str, unit: str | None, known: list) -> None:
    """A unit the reader does not know: a usual spelling (TODO-check), not a unit of the
    family at all (left out: its rows are quarantined), or a question (TODO)."""
    if unit == NOT_A_DOSE or (unit is not None and unit not in known):
        draft.todo.append(
            f"TODO-check: units.{key}: {value!r} is not a unit of {key} (a volume?): left "
            "out, its rows are quarantined (unknown unit) until the centre gives the dose"
        )
    elif unit is not None:
        draft.notes[f"units.{key}.codes.{value}"] = f"TODO-check: {value!r} read as {unit}"
    else:
        draft.notes[f"units.{key}.codes.{value}"] = (
            f"TODO: which unit is {value!r}? one of {', '.join(known)}"
        )

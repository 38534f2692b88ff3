"""Canonical columns a file does not hold but the mapping can compute, drafted as rules.

* ``sequence`` (ketamine) without an administration number: the rank of the date (then
  of a time column, when there is one) within the patient, which needs ``export: full``;
* ``age`` (inclusion) without an age but with a birth date: the age at inclusion, the
  birth date read in staging and never stored;
* ``month`` (a questionnaire or treatments file without a visit column, one row per
  patient): a constant 0, for a person to confirm;
* ``patient_id`` without a patient id column but with a site and a number in the site:
  the two joined, for a person to confirm.

Each rule comes with a comment saying what it assumes.
"""

from __future__ import annotations

from transforms.onboarding.columns import ColumnProfile, ambiguous_partner
from transforms.onboarding.shapes import ISO_DATE
from transforms.onboarding.suggestion import FormDraft
from transforms.onboarding.vocabulary import SPLIT_ID_NAMES, name_key
from transforms.staging.identifiers import BIRTH

CONSTANT_MONTH_FORMS = ("hads", "sf12", "treatments")  # one timepoint per file is common
TIME_NAMES = {"heure", "time", "hour", "heureadministration", "administrationtime", "horaire"}


def draft_derived(draft: FormDraft, profiles: list[ColumnProfile]) -> None:
    """Rules for the required columns the file does not hold."""
    usable = [p for p in profiles if p.identifier is None]
    if "patient_id" not in draft.produced():
        _joined_patient_id(draft, usable)
    elif draft.form == "inclusion" and "patient_id" in draft.columns:
        _number_restarting_by_site(draft, usable)
    if draft.form == "ketamine" and "sequence" not in draft.produced():
        _sequence_rank(draft, usable)
    if draft.form == "inclusion" and "age" not in draft.produced():
        _age_from_birth_date(draft, profiles)
    if draft.form in CONSTANT_MONTH_FORMS and "month" not in draft.produced():
        _month_constant(draft, usable)


def _sequence_rank(draft: FormDraft, usable: list[ColumnProfile]) -> None:
    if "administration_date" not in draft.columns:
        return
    rule = {"from": "rank", "date": "administration_date"}
    taken = draft.sources()
    times = [p for p in usable if p.kind == "time" and p.name not in taken]
    named = [p for p in times if name_key(p.name) in TIME_NAMES]
    time = next(iter(named or times), None)
    if time is not None:
        rule["time"] = time.name
        draft.read_by_rule(time.name, "derived.sequence.time")
    draft.derived["sequence"] = rule
    then = f" then {time.name!r}" if time is not None else ""
    draft.notes["derived.sequence"] = (
        f"TODO-check: no administration number: each patient's administrations are "
        f"numbered by date{then}, same-day ties in file order; a row repeated whole is one "
        "administration (its copy counted as an exact duplicate)"
    )
    if time is None and "%H" in draft.date_formats.get("administration_date", ""):
        draft.notes["derived.sequence"] += (
            f" (the times in {draft.columns['administration_date']!r} are not read: "
            "same-day doses keep their file order)"
        )
    draft.export = "full"
    draft.notes["export"] = (
        "TODO-check: the numbers restart in every file: each file must hold all of a "
        "patient's administrations (a full export, not new rows only)"
    )


def _age_from_birth_date(draft: FormDraft, profiles: list[ColumnProfile]) -> None:
    births = [p for p in profiles if p.identifier == BIRTH]
    if not births:
        return
    birth = births[0]
    if birth.kind != "date" or not birth.date_formats:
        draft.todo.append(
            f"TODO: age: {birth.name!r} is not a full birth date (a year alone, or values "
            "not read as dates): ask the centre for the age at inclusion"
        )
        return
    fmt = birth.date_formats[0]
    rule = {"from": "birth_date", "column": birth.name}
    if fmt != ISO_DATE:
        rule["format"] = fmt
    rule["at"] = "inclusion_date"
    draft.derived["age"] = rule
    draft.read_by_rule(birth.name, "derived.age.column")
    note = (
        f"the age at inclusion, from {birth.name!r}: the birth date is read only to compute "
        "it, and never stored or shown"
    )
    other = ambiguous_partner(fmt, birth.date_formats)
    if other:
        note += f"; TODO-check: ambiguous, every birth date also reads as {other}"
        if birth.date_evidence:
            note += f" (read as {birth.date_evidence}, whose values decide)"
    draft.notes["derived.age"] = note
    if "inclusion_date" not in draft.produced():
        draft.todo.append("TODO: age: the age is at inclusion_date, which is not mapped: map it")


def _month_constant(draft: FormDraft, usable: list[ColumnProfile]) -> None:
    """Month 0 for every row, unless a patient has several rows (then which is which?)."""
    if draft.families:
        return
    ids = next((p for p in usable if p.name == draft.columns.get("patient_id")), None)
    if ids is not None and ids.n_distinct < ids.n_rows - ids.n_missing:
        draft.todo.append(
            "TODO: month: no visit or month column, and patients have several rows: "
            "which timepoint is each row?"
        )
        return
    draft.constants["month"] = "0"
    draft.notes["constants.month"] = (
        "TODO-check: no visit or month column: every row is taken as month 0 (inclusion)"
    )


def _number_restarting_by_site(draft: FormDraft, usable: list[ColumnProfile]) -> None:
    """A patient id that repeats in the inclusion file (one row per patient) beside a site
    column: the number restarts in each site, the id is the two joined."""
    number = next(p for p in usable if p.name == draft.columns["patient_id"])
    taken = draft.sources()
    sites = [
        p for p in usable if name_key(p.name) in SPLIT_ID_NAMES["site"] and p.name not in taken
    ]
    if number.n_distinct >= number.n_rows - number.n_missing or len(sites) != 1:
        return
    del draft.columns["patient_id"]
    _join(draft, [sites[0].name, number.name])
    draft.notes["derived.patient_id"] = (
        f"TODO-check: {number.name!r} repeats in the inclusion file ({number.n_distinct} "
        f"values for {number.n_rows - number.n_missing} patients): joined with "
        f"{sites[0].name!r}, as the number restarts in each site"
    )


def _join(draft: FormDraft, columns: list[str]) -> None:
    draft.derived["patient_id"] = {"from": "join", "columns": columns, "separator": "-"}
    for name in columns:
        draft.read_by_rule(name, "derived.patient_id.columns")


def share_joined_ids(drafted: list[tuple[list[str], dict]]) -> None:
    """Every form of the centre that reads the number alone, in a file that has the site
    too, joins them as the form that found the join does (one patient, one id)."""
    rules = [
        s["mapping"]["derived"]["patient_id"]["columns"]
        for _, s in drafted
        if s["mapping"]["derived"].get("patient_id", {}).get("from") == "join"
    ]
    for site, number in (r for r in rules if len(r) == 2):
        for names, suggestion in drafted:
            mapping = suggestion["mapping"]
            if mapping.get("columns", {}).get("patient_id") == number and site in names:
                del mapping["columns"]["patient_id"]
                mapping["derived"] = {
                    "patient_id": {"from": "join", "columns": [site, number], "separator": "-"}
                } | mapping["derived"]
                suggestion["sources"] |= dict.fromkeys([site, number], "derived.patient_id.columns")
                suggestion["unmapped"].pop(site, None)
                suggestion["notes"]["derived.patient_id"] = (
                    f"TODO-check: joined as in the inclusion form ({site!r} and {number!r})"
                )


def _joined_patient_id(draft: FormDraft, usable: list[ColumnProfile]) -> None:
    """A site and a number in the site, when exactly one of each is found by name."""
    taken = draft.sources()
    parts = {
        part: [p for p in usable if name_key(p.name) in names and p.name not in taken]
        for part, names in SPLIT_ID_NAMES.items()
    }
    site, number = parts["site"], parts["number"]
    if len(site) != 1 or len(number) != 1:
        draft.todo.append(
            "TODO: no patient id column recognised; if several columns identify a patient "
            "together, write derived: {patient_id: {from: join, columns: [...]}}"
        )
        return
    if draft.families:  # a wide layout keeps its patient id among id_columns
        draft.todo.append(
            f"TODO: no patient id column: {site[0].name!r} and {number[0].name!r} together "
            "may be one; a wide layout needs it as a column of the file"
        )
        return
    columns = [site[0].name, number[0].name]
    _join(draft, columns)
    draft.notes["derived.patient_id"] = (
        f"TODO-check: no patient id column: {columns[0]!r} and {columns[1]!r} joined "
        "(the number restarts in each site?)"
    )

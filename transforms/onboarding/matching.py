"""Which canonical form a file is, and which of its columns are which canonical columns.

``suggest_mapping`` drafts one form's mapping from a file's column profiles: columns
matched by name (the form's own names and the vocabulary's synonyms, with or without a
unit; numbered questionnaire items, ``transforms.onboarding.items``; a lone 'Date'; a date
word and an event word, 'Admin date'; then, for what is left, one word of the name,
'pain_nrs'), wide families (EN_M0..EN_M12) by their stem, units read from the headers, and
for each matched column the advice of ``transforms.onboarding.codes`` on its values; then
what the mapping computes (``units``, ``answers``, ``derived``). ``guess_form`` says which
form a profiled file most looks like. Identifier columns are never matched.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import polars as pl

from cohortflow.errors import ConfigError
from schemas.forms import FORMS
from transforms.onboarding.answers import draft_value_maps
from transforms.onboarding.codes import advise_values
from transforms.onboarding.columns import ColumnProfile, merge_profiles
from transforms.onboarding.derived import draft_derived
from transforms.onboarding.files import FileProfile
from transforms.onboarding.items import lettered, numbered_item, order_note
from transforms.onboarding.suggestion import FormDraft
from transforms.onboarding.units import draft_row_units
from transforms.onboarding.vocabulary import (
    COLUMN_INDEX,
    DATE_HINTS,
    DATE_WORDS,
    FORM_NAME_HINTS,
    MISSING_MARKERS,
    SPECIAL_MISSING,
    UNIT_WORDS,
    name_key,
    plain,
    tokens,
)
from transforms.staging.mapping import UNIT_FACTORS

_WIDE_COLUMN = re.compile(
    r"^(?P<prefix>(?P<base>.+?)[ _.-]*(?:mois|month|m)[ _.-]?)(?P<n>\d{1,2})$", re.I
)


def suggest_mapping(profiles: list[ColumnProfile], form_name: str) -> dict[str, Any]:
    """Candidate mapping of one profiled file to the canonical form ``form_name``.

    Returns a dict with ``mapping`` (the FormMapping fields, without file_pattern and
    format), ``notes`` (comments keyed 'section.column'), ``todo`` (form-level things to
    decide), ``unmatched`` (canonical columns not found), ``unmapped`` (source column ->
    reason), ``unresolved_codes`` (canonical column -> source values without a code),
    ``identifiers`` (source column -> what it looks like), ``score`` (the number of
    canonical columns matched besides patient_id whose values fit them), ``sources``
    (every source column read -> its canonical column or rule) and ``evidence`` (those of
    the sources that show the file holds the form).
    """
    if form_name not in FORMS:
        raise ConfigError(f"unknown form {form_name!r}; known: {', '.join(FORMS)}")
    draft = FormDraft(form_name)
    usable = [p for p in profiles if p.identifier is None]
    for p in profiles:
        if p.identifier:
            draft.unmapped[p.name] = f"DO NOT MAP: looks like {p.identifier}"
    in_families = _match_families(draft, usable)
    _match_columns(draft, [p for p in usable if p.name not in in_families])
    by_name = {p.name: p for p in usable}
    worded = draft_value_maps(draft, by_name)  # items answered in words
    for canonical, source in draft.columns.items():
        if canonical not in worded:
            draft.add(canonical, advise_values(form_name, canonical, by_name[source]))
    for canonical, (_, members) in draft.families.items():
        merged = merge_profiles(canonical, members)
        draft.add(canonical, advise_values(form_name, canonical, merged))
    draft_row_units(draft, usable)
    draft_derived(draft, profiles)
    return _as_dict(draft, usable)


def _as_dict(draft: FormDraft, usable: list[ColumnProfile]) -> dict[str, Any]:
    form_columns = FORMS[draft.form].columns()
    wide = bool(draft.families)
    found = set(draft.columns) | set(draft.families) | ({"month"} if wide else set())
    markers = {m for p in usable for m in p.missing_markers} | {"", "NA"}  # the reader's default
    mapping: dict[str, Any] = {"layout": "wide" if wide else "long"}
    if wide:
        mapping["id_columns"] = dict(draft.columns)
        mapping["wide_columns"] = {c: pattern for c, (pattern, _) in draft.families.items()}
    else:
        mapping["columns"] = dict(draft.columns)
    mapping |= {
        "codes": draft.codes,
        "value_maps": draft.value_maps,
        "units": draft.units | draft.row_units,
        "date_formats": draft.date_formats,
        "constants": draft.constants,
        "derived": draft.derived,
    }
    mapping["missing_values"] = [m for m in MISSING_MARKERS if m in markers]
    mapping["missing_values"] += _special_missing(draft, usable)
    if draft.export:
        mapping["export"] = draft.export
    produced = draft.produced()
    return {
        "form": draft.form,
        "mapping": mapping,
        "notes": draft.notes,
        "todo": draft.todo,
        "unmatched": [c for c in form_columns if c not in produced],
        "unmapped": draft.unmapped,
        "unresolved_codes": draft.unresolved_codes,
        "identifiers": {p: r for p, r in draft.unmapped.items() if r.startswith("DO NOT")},
        "score": len(_evidence(draft, usable) & found - {"patient_id"}),
        "sources": draft.sources(),
        "evidence": {s: c for s, c in draft.sources().items() if c in _evidence(draft, usable)},
    }


def _special_missing(draft: FormDraft, usable: list[ColumnProfile]) -> list[str]:
    """SAS special missing values (.R, .N printed as 'R', 'N') among a number column's
    values: drafted as missing markers of this form, for a person to check."""
    by_name = {p.name: p for p in usable}
    found: dict[str, list[str]] = {}
    for source in draft.columns.values():
        profile = by_name[source]
        if profile.kind not in ("integer", "decimal") or not profile.n_invalid:
            continue
        for value, _ in profile.value_counts:
            if value in SPECIAL_MISSING:
                found.setdefault(value, []).append(source)
    if found:
        seen = "; ".join(f"{v!r} in {', '.join(map(repr, s))}" for v, s in found.items())
        draft.todo.append(
            f"TODO-check: missing_values: letters among numbers ({seen}) read as special "
            "missing values (SAS .R, .N): the data dictionary says what each means"
        )
    return sorted(found)


def _evidence(draft: FormDraft, usable: list[ColumnProfile]) -> set[str]:
    """Canonical columns matched whose values fit them: a number column of text ('Infusion
    registry - export') is no evidence that a file holds the form, nor a column matched by
    one word of its name unless its values are in the column's range or all coded."""
    by_name = {p.name: p for p in usable}
    fitting = set(draft.families) | ({"month"} if draft.families else set())
    for canonical, source in draft.columns.items():
        if canonical in draft.weak and not _in_range(draft, canonical, by_name[source]):
            continue
        if _fits(draft, canonical, by_name[source]):
            fitting.add(canonical)
    return fitting


def _fits(draft: FormDraft, canonical: str, profile: ColumnProfile) -> bool:
    dtype = FORMS[draft.form].columns()[canonical]
    if isinstance(draft.codes.get(canonical), str):  # answers in words, in a value map
        return True
    if dtype.is_numeric():
        return profile.kind in ("integer", "decimal", "empty") or canonical in draft.codes
    if dtype == pl.Date:
        return profile.kind in ("date", "integer", "empty")
    return True


def _in_range(draft: FormDraft, canonical: str, profile: ColumnProfile) -> bool:
    """Numbers within the schema's bounds, or text values that all have a code."""
    if canonical in draft.codes:
        return not draft.unresolved_codes.get(canonical)
    if profile.kind not in ("integer", "decimal") or profile.minimum is None:
        return False
    bounds: dict[str, Any] = {}
    for check in FORMS[draft.form].schema.to_schema().columns[canonical].checks:
        bounds |= check.statistics
    low, high = bounds.get("min_value"), bounds.get("max_value")
    allowed = bounds.get("allowed_values")
    if allowed is not None:
        return {profile.minimum, profile.maximum} <= set(allowed)
    return (low is None or profile.minimum >= low) and (high is None or profile.maximum <= high)


def _match_families(draft: FormDraft, usable: list[ColumnProfile]) -> set[str]:
    """Wide layout: families like EN_M0..EN_M12 (or nrs_baseline, nrs_1m..nrs_12m, and
    their dates nrs_1m_at) whose stem names a canonical column."""
    if "month" not in FORMS[draft.form].columns():
        return set()
    taken = set()
    for stem, pattern, members, word in _wide_families(usable).values():
        if len(members) < 2:
            continue
        canonical = _canonical_for(draft.form, stem) or _dated_family(draft.form, stem)
        if canonical in (None, "patient_id", "month") or canonical in draft.families:
            continue
        draft.families[canonical] = (pattern, members)
        names = [m.name for m in members]
        draft.notes[f"wide_columns.{canonical}"] = (
            f"{len(names)} columns: {names[0]} .. {names[-1]}"
        )
        if word:  # 'nrs_baseline': the month group is a word, coded as month 0
            draft.codes["month"] = {word: "0"}
            draft.notes["codes.month"] = f"TODO-check: {word!r} in the column names is month 0"
        taken |= set(names)
    return taken


_SUFFIXED_MONTH = re.compile(
    r"^(?P<base>.+?[ _.-])(?:(?P<n>\d{1,2})(?P<unit>[ _.-]?(?:months?|mois|mo|m))"
    r"|(?P<word>baseline|screening|inclusion|enrolment|enrollment))(?P<suffix>[ _.-].+)?$",
    re.I,
)
Family = tuple[str, str, list[ColumnProfile], str | None]  # stem, regex, members, month 0


def _wide_families(usable: list[ColumnProfile]) -> dict[tuple[str, str], Family]:
    """Columns by what surrounds their month: 'EN_M' -> ('EN', 'EN_M(\\d+)', [EN_M0, ..]);
    the number first ('nrs_3m', 'nrs_3m_at') with a word for month 0 ('nrs_baseline')."""
    families: dict[tuple[str, str], Family] = {}
    for p in usable:
        match = _WIDE_COLUMN.match(p.name)
        if match:
            pattern = re.escape(match["prefix"]) + r"(\d+)"
            families.setdefault((match["prefix"], ""), (match["base"], pattern, [], None))
            families[(match["prefix"], "")][2].append(p)
    for p in usable:
        match = _SUFFIXED_MONTH.match(p.name)
        if match and not any(p in f[2] for f in families.values()):
            key = (match["base"], match["suffix"] or "")
            members = [*families.get(key, ("", "", [], None))[2], p]
            word = families.get(key, ("", "", [], None))[3] or match["word"]
            stem = match["base"] + (match["suffix"] or "")
            families[key] = (stem, _suffixed_pattern(key, members), members, word)
    return families


def _suffixed_pattern(key: tuple[str, str], members: list[ColumnProfile]) -> str:
    """'nrs_(baseline|\\d+)m?' : the regex a family of number-first names fullmatches."""
    base, suffix = key
    found = [_SUFFIXED_MONTH.match(m.name) for m in members]
    units = sorted({f["unit"] for f in found if f and f["unit"]})
    words = sorted({f["word"] for f in found if f and f["word"]})
    month = "|".join([*map(re.escape, words), r"\d+"])
    unit = f"(?:{'|'.join(map(re.escape, units))})" + ("?" if words else "") if units else ""
    return f"{re.escape(base)}({month}){unit}{re.escape(suffix)}"


def _dated_family(form: str, stem: str) -> str | None:
    """'nrs_at' (nrs_1m_at ..): the dates of a family, the form's only date column."""
    dates = [c for c, dtype in FORMS[form].columns().items() if dtype == pl.Date]
    last = tokens(stem)[-1:] if tokens(stem) else []
    dated = set(last) & (DATE_WORDS | {"at", "dt", "dtc", "date"})
    return dates[0] if dated and len(dates) == 1 else None


def _match_columns(draft: FormDraft, usable: list[ColumnProfile]) -> None:
    """Long columns by name (synonyms, numbered questionnaire items, the form's one date),
    then the columns left by a word of their name ('pain_nrs', 'visit_month')."""
    sf12_lettered = lettered([p.name for p in usable])
    for p in usable:
        canonical = _canonical_for(draft.form, p.name, sf12_lettered=sf12_lettered)
        if canonical is None:
            draft.unmapped[p.name] = "no canonical column recognised: leave it out or map it"
        elif _coded_over_verbatim(p.name, draft.columns.get(canonical)):
            taken = draft.columns[canonical]
            draft.columns[canonical] = p.name
            draft.unmapped[taken] = f"the verbatim of {p.name!r}: {canonical} is read from it"
        elif canonical in draft.columns or canonical in draft.families:
            taken = draft.columns.get(canonical) or draft.families[canonical][0]
            draft.unmapped[p.name] = f"also looks like {canonical} (mapped from {taken!r})"
        elif canonical == "month" and draft.families:
            draft.unmapped[p.name] = "looks like month, but the months are in the column names"
        else:
            draft.columns[canonical] = p.name
            note = order_note(draft.form, p.name, canonical)
            if note and note not in draft.todo:
                draft.todo.append(note)
            _unit_of(draft, p.name, canonical)
    for p in usable:
        found = _by_word(draft.form, p.name) if p.name in draft.unmapped else None
        wide = {"month"} if draft.families else set()  # the months are in the column names
        if found and found[0] not in {*draft.columns, *draft.families, *wide}:
            canonical, word = found
            draft.columns[canonical] = p.name
            draft.weak.add(canonical)
            del draft.unmapped[p.name]
            draft.notes[f"columns.{canonical}"] = f"TODO-check: by the word {word!r} of its name"


def _coded_over_verbatim(name: str, taken: str | None) -> bool:
    """CDISC's coded term (AEDECOD, CMDECOD) is read rather than the verbatim (AETERM)."""
    return (
        taken is not None
        and name_key(name).endswith("decod")
        and not (name_key(taken).endswith("decod"))
    )


def _by_word(form: str, name: str) -> tuple[str, str] | None:
    """The one canonical column that words of the name are synonyms of, and the word."""
    index = COLUMN_INDEX[form]
    found = {index[w]: w for w in tokens(name) if w in index and len(w) > 2}
    return next(iter(found.items())) if len(found) == 1 else None


def _canonical_for(form: str, name: str, *, sf12_lettered: bool = False) -> str | None:
    index = COLUMN_INDEX[form]
    for variant in _name_variants(name):
        if variant in index:
            canonical = index[variant]
            unit = _unit_in(name)
            if canonical == "dose_mg" and unit and unit.endswith("/kg") and form == "ketamine":
                return "dose_mg_per_kg"
            return canonical
    return (
        numbered_item(form, name, sf12_lettered=sf12_lettered)
        or _the_date_column(form, name)
        or _hinted_date(form, name)
        or _suffixed_date(form, name)
    )


def _name_variants(name: str) -> list[str]:
    """The name, without its '(unit)', without a trailing unit word."""
    words = tokens(name)
    bare = tokens(re.sub(r"\(.*?\)", " ", name))
    variants = ["".join(words), "".join(bare)]
    for n in (2, 1):
        if len(words) > n and "".join(words[-n:]) in UNIT_WORDS:
            variants.append("".join(words[:-n]))
    return list(dict.fromkeys(v for v in variants if v))


def _unit_in(name: str) -> str | None:
    """The unit a header states: 'Poids (lb)', 'weight_g', 'Dose (µg/kg)'."""
    inside = re.findall(r"\((.*?)\)", name)
    words = tokens(name)
    for candidate in [*(name_key(i) for i in inside), "".join(words[-2:]), "".join(words[-1:])]:
        if candidate in UNIT_WORDS and len(words) > 1:
            return UNIT_WORDS[candidate]
    return None


def _unit_of(draft: FormDraft, name: str, canonical: str) -> None:
    unit = _unit_in(name)
    known = UNIT_FACTORS.get(canonical, {})
    if unit in known and known[unit] != 1.0:
        draft.units[canonical] = unit
        draft.notes[f"units.{canonical}"] = f"TODO-check: unit read from the header {name!r}"


def _the_date_column(form: str, name: str) -> str | None:
    """A column (or a family of wide columns) named just 'Date': the form's only date."""
    dates = [c for c, dtype in FORMS[form].columns().items() if dtype == pl.Date]
    return dates[0] if name_key(name) in ("date", "datum") and len(dates) == 1 else None


def _hinted_date(form: str, name: str) -> str | None:
    """'Date of inclusion', 'Admin date': a date word and a word of one date column's event."""
    words = set(tokens(name))
    if not words & DATE_WORDS:
        return None
    dates = [c for c, dtype in FORMS[form].columns().items() if dtype == pl.Date]
    hinted = [c for c in dates if words & DATE_HINTS.get(c, frozenset())]
    return hinted[0] if len(hinted) == 1 else None


# CDISC / SAS names a date by a suffix glued to its stem: PAINDT, EXSTDTM, RFSTDTC; web
# applications by '_at': inclusion_at, completed_at
_DATE_SUFFIX = re.compile(r"^(?P<stem>[a-z][a-z0-9_]*?)_?(?:dtc|dtm|dt|date|_at)$")
_NOT_EVENTS = (
    "brth",
    "birth",
    "dob",
    "dth",
    "death",
    "naiss",
    "deces",
    "export",
    "enter",
    "upd",
    "modif",
    "creat",
    "sign",
)


def _suffixed_date(form: str, name: str) -> str | None:
    """'PAINDT' in a form with one date column, 'inclusion_at' (a stem naming the event)."""
    match = _DATE_SUFFIX.match("_".join(tokens(name)))
    if match is None or any(w in match["stem"] for w in _NOT_EVENTS):
        return None
    dates = [c for c, dtype in FORMS[form].columns().items() if dtype == pl.Date]
    stem_words = set(tokens(match["stem"].replace("_", " ")))
    hinted = [c for c in dates if stem_words & DATE_HINTS.get(c, frozenset())]
    if len(hinted) == 1:
        return hinted[0]
    by_suffix = not name_key(name).endswith("at")  # '_at' needs a stem naming the event
    return dates[0] if len(dates) == 1 and by_suffix and not hinted else None


def guess_form(profile: FileProfile) -> str | None:
    """The form a file most looks like: by its name when its columns agree, else columns."""
    scores = {f: suggest_mapping(profile.columns, f)["score"] for f in FORMS}
    named = [f for f in FORMS if _named_like(profile.path, f) and scores[f] > 0]
    if named:
        return max(named, key=lambda f: scores[f])
    best = max(scores, key=lambda f: scores[f] / len(FORMS[f].columns()))
    return best if scores[best] > 0 else None


def _named_like(path: Path, form: str) -> bool:
    words = set(tokens(path.stem)) | set(re.findall(r"[a-z]+", plain(path.stem)))
    return bool(words.intersection(FORM_NAME_HINTS[form]))

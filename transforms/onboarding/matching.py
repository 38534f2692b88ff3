"""Which canonical form a file is, and which of its columns are which canonical columns.

``suggest_mapping`` drafts one form's mapping from a file's column profiles: columns
matched by name (the form's own names and the vocabulary's synonyms, with or without a
unit; numbered questionnaire items; a lone 'Date'), wide families (EN_M0..EN_M12) by their
stem, units read from the headers, and for each matched column the advice of
``transforms.onboarding.codes`` on its values. ``guess_form`` says which form a profiled
file most looks like. Identifier columns are never matched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from cohortflow.errors import ConfigError
from schemas.forms import FORMS, SF12_RANGES
from transforms.onboarding.codes import ValueAdvice, advise_values
from transforms.onboarding.columns import ColumnProfile, merge_profiles
from transforms.onboarding.files import FileProfile
from transforms.onboarding.vocabulary import (
    COLUMN_INDEX,
    FORM_NAME_HINTS,
    MISSING_MARKERS,
    UNIT_WORDS,
    name_key,
    plain,
    tokens,
)
from transforms.staging.mapping import UNIT_FACTORS

SF12_ITEMS = list(SF12_RANGES)  # in questionnaire order
_WIDE_COLUMN = re.compile(
    r"^(?P<prefix>(?P<base>.+?)[ _.-]*(?:mois|month|m)[ _.-]?)(?P<n>\d{1,2})$", re.I
)
_HADS_ITEM = re.compile(r"^(?:hads_?)?([ad])_?([1-7])$")
_HADS_NUMBER = re.compile(r"^(?:hads_?)?(?:q|item)_?(\d{1,2})$")
_SF12_NUMBER = re.compile(r"^(?:sf_?12_?(?:q|item)?|q|item)_?(\d{1,2})$")


@dataclass
class _Draft:
    """A form mapping under construction, and what a person must check."""

    form: str
    columns: dict[str, str] = field(default_factory=dict)  # canonical -> source
    families: dict[str, tuple[str, list[ColumnProfile]]] = field(default_factory=dict)
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    date_formats: dict[str, str] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)  # 'codes.sex' -> comment
    todo: list[str] = field(default_factory=list)
    unmapped: dict[str, str] = field(default_factory=dict)  # source -> why not mapped
    unresolved_codes: dict[str, list[str]] = field(default_factory=dict)

    def add(self, canonical: str, advice: ValueAdvice) -> None:
        """Take in what a matched column's values say."""
        if advice.date_format:
            self.date_formats[canonical] = advice.date_format
        if advice.codes:  # an empty dict would turn every value into an unknown code
            self.codes[canonical] = advice.codes
        if advice.unresolved:
            self.unresolved_codes[canonical] = advice.unresolved
        self.notes |= advice.notes
        self.todo += advice.todo


def suggest_mapping(profiles: list[ColumnProfile], form_name: str) -> dict[str, Any]:
    """Candidate mapping of one profiled file to the canonical form ``form_name``.

    Returns a dict with ``mapping`` (the FormMapping fields, without file_pattern and
    format), ``notes`` (comments keyed 'section.column'), ``todo`` (form-level things to
    decide), ``unmatched`` (canonical columns not found), ``unmapped`` (source column ->
    reason), ``unresolved_codes`` (canonical column -> source values without a code),
    ``identifiers`` (source column -> what it looks like) and ``score`` (the number of
    canonical columns matched besides patient_id).
    """
    if form_name not in FORMS:
        raise ConfigError(f"unknown form {form_name!r}; known: {', '.join(FORMS)}")
    draft = _Draft(form_name)
    usable = [p for p in profiles if p.identifier is None]
    for p in profiles:
        if p.identifier:
            draft.unmapped[p.name] = f"DO NOT MAP: looks like {p.identifier}"
    in_families = _match_families(draft, usable)
    _match_columns(draft, [p for p in usable if p.name not in in_families])
    by_name = {p.name: p for p in usable}
    for canonical, source in draft.columns.items():
        draft.add(canonical, advise_values(form_name, canonical, by_name[source]))
    for canonical, (_, members) in draft.families.items():
        merged = merge_profiles(canonical, members)
        draft.add(canonical, advise_values(form_name, canonical, merged))
    return _as_dict(draft, usable)


def _as_dict(draft: _Draft, usable: list[ColumnProfile]) -> dict[str, Any]:
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
    mapping |= {"codes": draft.codes, "units": draft.units, "date_formats": draft.date_formats}
    mapping["missing_values"] = [m for m in MISSING_MARKERS if m in markers]
    return {
        "form": draft.form,
        "mapping": mapping,
        "notes": draft.notes,
        "todo": draft.todo,
        "unmatched": [c for c in form_columns if c not in found],
        "unmapped": draft.unmapped,
        "unresolved_codes": draft.unresolved_codes,
        "identifiers": {p: r for p, r in draft.unmapped.items() if r.startswith("DO NOT")},
        "score": len(found - {"patient_id"}),
    }


def _match_families(draft: _Draft, usable: list[ColumnProfile]) -> set[str]:
    """Wide layout: families like EN_M0..EN_M12 whose stem names a canonical column."""
    if "month" not in FORMS[draft.form].columns():
        return set()
    taken = set()
    for prefix, (stem, members) in _wide_families(usable).items():
        if len(members) < 2:
            continue
        canonical = _canonical_for(draft.form, stem)
        if canonical in (None, "patient_id", "month") or canonical in draft.families:
            continue
        draft.families[canonical] = (re.escape(prefix) + r"(\d+)", members)
        names = [m.name for m in members]
        draft.notes[f"wide_columns.{canonical}"] = (
            f"{len(names)} columns: {names[0]} .. {names[-1]}"
        )
        taken |= set(names)
    return taken


def _wide_families(usable: list[ColumnProfile]) -> dict[str, tuple[str, list[ColumnProfile]]]:
    """Columns by the prefix before their month number: 'EN_M' -> ('EN', [EN_M0, EN_M1])."""
    families: dict[str, tuple[str, list[ColumnProfile]]] = {}
    for p in usable:
        match = _WIDE_COLUMN.match(p.name)
        if match:
            families.setdefault(match["prefix"], (match["base"], []))[1].append(p)
    return families


def _match_columns(draft: _Draft, usable: list[ColumnProfile]) -> None:
    """Long columns by name (synonyms, numbered questionnaire items, the form's one date)."""
    for p in usable:
        canonical = _canonical_for(draft.form, p.name)
        if canonical is None:
            draft.unmapped[p.name] = "no canonical column recognised: leave it out or map it"
        elif canonical in draft.columns or canonical in draft.families:
            taken = draft.columns.get(canonical) or draft.families[canonical][0]
            draft.unmapped[p.name] = f"also looks like {canonical} (mapped from {taken!r})"
        elif canonical == "month" and draft.families:
            draft.unmapped[p.name] = "looks like month, but the months are in the column names"
        else:
            draft.columns[canonical] = p.name
            _item_note(draft, p.name, canonical)
            _unit_of(draft, p.name, canonical)


def _canonical_for(form: str, name: str) -> str | None:
    index = COLUMN_INDEX[form]
    for variant in _name_variants(name):
        if variant in index:
            canonical = index[variant]
            unit = _unit_in(name)
            if canonical == "dose_mg" and unit and unit.endswith("/kg") and form == "ketamine":
                return "dose_mg_per_kg"
            return canonical
    return _numbered_item(form, name) or _the_date_column(form, name)


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


def _unit_of(draft: _Draft, name: str, canonical: str) -> None:
    unit = _unit_in(name)
    known = UNIT_FACTORS.get(canonical, {})
    if unit in known and known[unit] != 1.0:
        draft.units[canonical] = unit
        draft.notes[f"units.{canonical}"] = f"TODO-check: unit read from the header {name!r}"


def _numbered_item(form: str, name: str) -> str | None:
    """HADS A1/D1 or items 1-14 (odd = anxiety), SF-12 items 1-12, in questionnaire order."""
    words = "_".join(tokens(name))
    if form == "hads":
        item = _HADS_ITEM.match(words)
        if item:
            return f"hads_{item[1]}{item[2]}"
        number = _HADS_NUMBER.match(words)
        if number and 1 <= int(number[1]) <= 14:
            n = int(number[1])
            return f"hads_a{(n + 1) // 2}" if n % 2 else f"hads_d{n // 2}"
    if form == "sf12":
        number = _SF12_NUMBER.match(words)
        if number and 1 <= int(number[1]) <= len(SF12_ITEMS):
            return SF12_ITEMS[int(number[1]) - 1]
    return None


def _item_note(draft: _Draft, name: str, canonical: str) -> None:
    """Items known only by their number are assumed in the questionnaire's order."""
    words = "_".join(tokens(name))
    numbered = {"hads": _HADS_NUMBER, "sf12": _SF12_NUMBER}.get(draft.form)
    if numbered is None or not numbered.match(words) or name_key(name) == name_key(canonical):
        return
    note = "TODO-check: numbered items are assumed in the questionnaire's order"
    if draft.form == "hads":
        note += " (HADS: odd items anxiety, even items depression)"
    if note not in draft.todo:
        draft.todo.append(note)


def _the_date_column(form: str, name: str) -> str | None:
    """A column (or a family of wide columns) named just 'Date': the form's only date."""
    dates = [c for c, dtype in FORMS[form].columns().items() if dtype == pl.Date]
    return dates[0] if name_key(name) == "date" and len(dates) == 1 else None


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

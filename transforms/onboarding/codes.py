"""What the values of a matched column add to a form's mapping: date formats, codes, months.

Once a source column is matched to a canonical one, its profile says how the reader must
translate it: the strptime format of a date column (and whether day and month could be
swapped), the canonical code of each value of a coded column (from the vocabulary, or
guessed for numeric codes), the month of each event name of a long visit column, and the
values that will not cast. Each function returns its advice as a ``ValueAdvice``;
``transforms.onboarding.matching`` adds it to the form's draft.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import cast

import polars as pl

from schemas.forms import FORMS
from transforms.onboarding.columns import ColumnProfile, ambiguous_partner
from transforms.onboarding.shapes import EXCEL_SERIAL_RANGE, ISO_DATE
from transforms.onboarding.vocabulary import (
    BASELINE_WORDS,
    CODE_INDEX,
    CODE_PREFIXES,
    SEX_FLAGS,
    name_key,
    plain,
    tokens,
)
from transforms.staging.mapping import EXCEL_DATE

EXCEL_EPOCH = dt.date(1899, 12, 30)  # day 0 as the reader counts (the 1900 leap-year bug)

# 'month_3_arm_1', 'Mois 3', 'M3'; visits numbered by month: 'V3', 'Visite 3' (a guess the
# draft asks to check)
_MONTH_CODE = re.compile(r"(?:^|[^a-z])(?:month|mois|m|visit|visite|v)[ _-]?(\d{1,2})(?!\d)")
# '3m', '12 months', '6 mois', 'fu_6mo': the number first (registries, web applications)
_MONTH_AFTER = re.compile(r"(?:^|[^a-z0-9])(\d{1,2})[ _-]?(?:m|mo|mos|months?|mois)(?![a-z])")


@dataclass
class ValueAdvice:
    """What one column's values add to the mapping, and what a person must check."""

    date_format: str | None = None  # a strptime format other than the reader's default
    codes: dict[str, str] = field(default_factory=dict)  # source value -> canonical code
    unresolved: list[str] = field(default_factory=list)  # source values without a code
    notes: dict[str, str] = field(default_factory=dict)  # 'codes.sex' -> comment on the entry
    todo: list[str] = field(default_factory=list)  # form-level things to decide


def advise_values(form: str, canonical: str, profile: ColumnProfile) -> ValueAdvice:
    """Date formats, codes, and values the reader will not be able to cast."""
    dtype = FORMS[form].columns()[canonical]
    if dtype == pl.Date:
        return _date_format(canonical, profile)
    if canonical == "month" and profile.kind not in ("integer", "empty"):
        return _month_codes(profile)
    if dtype.is_numeric():
        return _numbers(canonical, dtype, profile)
    allowed = _allowed_codes(form, canonical)
    return _codes(canonical, profile, allowed) if allowed else ValueAdvice()


def _numbers(canonical: str, dtype: pl.DataType, profile: ColumnProfile) -> ValueAdvice:
    if profile.kind == "text":
        return ValueAdvice(
            todo=[f"TODO: {canonical}: most values are not numbers: check the column"]
        )
    if profile.kind == "decimal" and dtype.is_integer():
        return ValueAdvice(
            todo=[
                f"TODO-check: {canonical}: some values are not whole numbers; "
                "they will be quarantined"
            ]
        )
    if profile.n_invalid:
        return ValueAdvice(
            todo=[f"TODO-check: {canonical}: {profile.n_invalid} value(s) not numbers"]
        )
    return ValueAdvice()


def _date_format(canonical: str, profile: ColumnProfile) -> ValueAdvice:
    if profile.kind == "empty":
        return ValueAdvice(todo=[f"TODO: {canonical}: no values to guess a date format from"])
    if profile.kind in ("integer", "decimal") and excel_serials(profile):
        return ValueAdvice(
            date_format=EXCEL_DATE,
            notes={
                f"date_formats.{canonical}": "TODO-check: numbers read as Excel day numbers "
                f"({_excel_day(profile.minimum)} to {_excel_day(profile.maximum)})"
            },
        )
    if profile.kind != "date" or not profile.date_formats:
        return ValueAdvice(
            todo=[f"TODO: {canonical}: the values do not look like dates: check them"]
        )
    fmt = profile.date_formats[0]
    advice = ValueAdvice(date_format=fmt if fmt != ISO_DATE else None)
    other = ambiguous_partner(fmt, profile.date_formats)
    if other and profile.date_evidence:
        advice.notes[f"date_formats.{canonical}"] = (
            f"TODO-check: ambiguous, every value also reads as {other} (no day > 12); "
            f"read as {profile.date_evidence}, whose values decide"
        )
    elif other:
        advice.notes[f"date_formats.{canonical}"] = (
            f"TODO: ambiguous, every value also reads as {other} (no day > 12): ask the centre"
        )
    elif profile.n_invalid:
        advice.todo.append(
            f"TODO-check: {canonical}: {profile.n_invalid} value(s) do not read as {fmt}; "
            "they will be quarantined"
        )
    return advice


def excel_serials(profile: ColumnProfile) -> bool:
    """Whole numbers in the range of Excel's day numbers of plausible dates."""
    low, high = EXCEL_SERIAL_RANGE
    ends = (profile.minimum, profile.maximum)
    return all(isinstance(v, float) and v.is_integer() and low <= v <= high for v in ends)


def _excel_day(serial: object) -> str:
    """An Excel day number (1900 system, as the reader counts them) as an ISO date."""
    return (EXCEL_EPOCH + dt.timedelta(days=int(cast(float, serial)))).isoformat()


def _allowed_codes(form: str, canonical: str) -> list[str]:
    """The canonical codes of a coded text column (its Pandera isin check)."""
    column = FORMS[form].schema.to_schema().columns[canonical]
    if FORMS[form].columns()[canonical] != pl.String:
        return []
    for check in column.checks:
        if check.name == "isin":
            return list(check.statistics["allowed_values"])
    return []


def _codes(canonical: str, profile: ColumnProfile, allowed: list[str]) -> ValueAdvice:
    values = [v for v, _ in profile.value_counts]
    if not values:
        if profile.n_distinct:
            todo = f"TODO: codes.{canonical}: {profile.n_distinct} values: write codes"
            return ValueAdvice(todo=[todo])
        return ValueAdvice()
    if set(values) <= set(allowed):
        return ValueAdvice()
    flagged = _flag_codes(profile.name, values) if canonical == "sex" else None
    guessed: dict[str, str] = {}
    classified: dict[str, str] = {}
    if flagged:
        codes, note = flagged
    elif all(re.fullmatch(r"\d+", v) for v in values):
        codes, note = _numeric_codes(canonical, values, allowed)
    else:
        codes = _named_codes(canonical, values, allowed)
        guessed = _codes_by_word(canonical, [v for v in values if v not in codes], allowed)
        codes |= guessed
        classified = _codes_by_prefix(canonical, [v for v in values if v not in codes])
        codes |= classified
        unseen = [a for a in allowed if a not in codes.values()]  # after the guesses
        note = f"TODO: no code seen for {', '.join(unseen)}: add the centre's" if unseen else ""
    advice = ValueAdvice(codes=dict(sorted(codes.items(), key=lambda kv: _natural(kv[0]))))
    if note:
        advice.notes[f"codes.{canonical}"] = note
    if guessed:
        pairs = ", ".join(f"{v!r} -> {c}" for v, c in guessed.items())
        advice.todo.append(f"TODO-check: codes.{canonical}: guessed by a word: {pairs}")
    if classified:
        pairs = ", ".join(f"{v!r} -> {c}" for v, c in classified.items())
        advice.todo.append(
            f"TODO-check: codes.{canonical}: read as classification codes (ICD-10, ATC) "
            f"by their start: {pairs}"
        )
    advice.unresolved = [v for v in values if v not in codes]
    if advice.unresolved:
        advice.todo.append(
            f"TODO: codes.{canonical}: no canonical code for {advice.unresolved} "
            f"(one of {allowed}); values without a code are quarantined"
        )
    return advice


def _numeric_codes(
    canonical: str, values: list[str], allowed: list[str]
) -> tuple[dict[str, str], str]:
    """A guess for every canonical code, not only the ones seen: the centre will use them."""
    if canonical == "sex":
        return {"1": "M", "2": "F"}, "TODO-check: guessed 1 = M, 2 = F (INSEE): confirm"
    start = 0 if min(int(v) for v in values) == 0 else 1
    codes = {str(start + i): code for i, code in enumerate(allowed)}
    note = f"TODO-check: guessed in canonical order from {start}: check the data dictionary"
    return codes, note


def _named_codes(canonical: str, values: list[str], allowed: list[str]) -> dict[str, str]:
    """Values the vocabulary knows (or canonical codes written another way)."""
    known = {name_key(a): a for a in allowed} | CODE_INDEX.get(canonical, {})
    return {v: known[name_key(v)] for v in values if name_key(v) in known}


_STOP_WORDS = {"in", "de", "du", "la", "le", "of", "on", "to", "at", "en", "et", "and"}


def _codes_by_word(canonical: str, values: list[str], allowed: list[str]) -> dict[str, str]:
    """'CRPS type I' -> crps, 'Orale (per os)' -> oral: the one code a word of it names."""
    known = {name_key(a): a for a in allowed} | CODE_INDEX.get(canonical, {})
    guessed = {}
    for value in values:
        words = [t for t in tokens(value) if t not in _STOP_WORDS]
        found = {known[w] for w in words if w in known}
        if len(found) == 1:
            guessed[value] = found.pop()
    return guessed


_CLASSIFICATION_CODE = re.compile(r"^[A-Za-z]\d{2}[A-Za-z0-9.]*$")  # G62.9, N02AX02


def _codes_by_prefix(canonical: str, values: list[str]) -> dict[str, str]:
    """ICD-10 or ATC codes ('G62.9', 'N02AX02') -> the code of the longest known start."""
    prefixes = CODE_PREFIXES.get(canonical, [])
    guessed = {}
    for value in values:
        key = name_key(value)
        if _CLASSIFICATION_CODE.match(value.strip()):
            found = next((code for start, code in prefixes if key.startswith(start)), None)
            if found:
                guessed[value] = found
    return guessed


_TRUE = {"true", "t", "1", "yes", "y", "oui", "o", "vrai"}
_FALSE = {"false", "f", "0", "no", "n", "non", "faux"}


def _flag_codes(name: str, values: list[str]) -> tuple[dict[str, str], str] | None:
    """A yes/no column named for one sex ('is_male': true/false) -> M and F."""
    sex = SEX_FLAGS.get(name_key(name))
    plain_values = {v.strip().lower() for v in values}
    if sex is None or not plain_values <= _TRUE | _FALSE:
        return None
    other = "F" if sex == "M" else "M"
    codes = {v: sex if v.strip().lower() in _TRUE else other for v in values}
    return codes, f"TODO-check: {name!r} says yes for {sex}, no for {other}"


def _month_codes(profile: ColumnProfile) -> ValueAdvice:
    """Event or visit names -> month numbers: 'baseline_arm_1' -> 0, 'month_3_arm_1' -> 3."""
    values = [v for v, _ in profile.value_counts]
    if not values:
        todo = f"TODO: codes.month: {profile.n_distinct} values: write codes by hand"
        return ValueAdvice(todo=[todo])
    months = {value: _month_of(value) for value in values}
    codes = {value: str(month) for value, month in months.items() if month is not None}
    advice = ValueAdvice(
        codes=dict(sorted(codes.items(), key=lambda kv: int(kv[1]))),
        unresolved=[value for value, month in months.items() if month is None],
        notes={"codes.month": "TODO-check: read from the event names; add events not seen"},
    )
    if advice.unresolved:
        advice.todo.append(f"TODO: codes.month: no month number found in {advice.unresolved}")
    return advice


def _month_of(value: str) -> int | None:
    if BASELINE_WORDS.intersection(tokens(value)):
        return 0
    match = _MONTH_CODE.search(plain(value)) or _MONTH_AFTER.search(plain(value))
    return int(match[1]) if match else None


def _natural(text: str) -> tuple[int, int, str]:
    return (0, int(text), "") if text.isdigit() else (1, 0, text)

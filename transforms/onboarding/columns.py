"""What each column of an export holds: missing markers, type, date formats, range, values.

The profile of one column is what the matching reads to draft its mapping (codes from
the values of a low-cardinality column, a date format from the values of a date column)
and what the report prints. Direct identifiers are flagged by the one policy the staging
reader rejects files by (``staging.identifiers``), and none of their values is kept.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, replace
from typing import cast

import polars as pl

from transforms.onboarding.shapes import (
    AMBIGUOUS_DATES,
    DATE_FORMATS,
    DECIMAL,
    DECIMAL_COMMA,
    FULL_MONTH_NAMES,
    INTEGER,
    ISO_DATE,
    PLAUSIBLE_YEARS,
    TIME,
)
from transforms.onboarding.vocabulary import MISSING_MARKERS
from transforms.staging.dates import parse_dates, uses_month_names
from transforms.staging.identifiers import BIRTH, direct_identifier_columns

LOW_CARDINALITY = 20  # a column with at most this many distinct values is listed in full
TOP_VALUES = 10
TOLERATED_INVALID = 0.9  # a column is typed when this share of its values fit the type


@dataclass(frozen=True)
class ColumnProfile:
    """What one column of an export holds. Values of identifier columns are never kept."""

    name: str
    n_rows: int
    n_missing: int
    missing_markers: tuple[str, ...] = ()  # the markers seen ('' for empty cells)
    kind: str = "empty"  # integer | decimal | date | time | text | empty
    n_invalid: int = 0  # non-missing values that do not fit the kind
    date_formats: tuple[str, ...] = ()  # every format that reads the values, preferred first
    minimum: float | dt.date | None = None
    maximum: float | dt.date | None = None
    n_distinct: int = 0
    value_counts: tuple[tuple[str, int], ...] = ()  # all of them, low-cardinality columns only
    identifier: str | None = None  # what direct identifier it looks like
    decimal_comma: bool = False
    date_evidence: str | None = None  # an ambiguous column: the column that decided it

    @property
    def top_values(self) -> tuple[tuple[str, int], ...]:
        """The most frequent values (up to TOP_VALUES), most frequent first."""
        return self.value_counts[:TOP_VALUES]

    @property
    def date_format(self) -> str | None:
        """The preferred strptime format, when the column holds dates."""
        return self.date_formats[0] if self.kind == "date" and self.date_formats else None

    @property
    def ambiguous_with(self) -> str | None:
        """Another format that reads every value as well (day/month or month/day)."""
        return ambiguous_partner(self.date_format, self.date_formats)


def ambiguous_partner(fmt: str | None, formats: tuple[str, ...]) -> str | None:
    """The other reading (day first <-> month first) of ``fmt``, when it reads as well."""
    pairs = AMBIGUOUS_DATES | {m: d for d, m in AMBIGUOUS_DATES.items()}
    other = pairs.get(fmt or "")
    return other if other in formats else None


def profile_table(frame_as_text: pl.DataFrame) -> list[ColumnProfile]:
    """Profile every column of an all-text frame, flagging direct identifiers."""
    identifiers = direct_identifier_columns(frame_as_text)
    profiles = []
    for name in frame_as_text.columns:
        if name in identifiers:  # flag loudly, read nothing of the values
            profiles.append(_identifier_profile(name, frame_as_text[name], identifiers[name]))
        else:
            profiles.append(_profile_column(name, frame_as_text[name].cast(pl.String)))
    return profiles


def _identifier_profile(name: str, column: pl.Series, kind: str) -> ColumnProfile:
    """An identifier column: how many values it has, and nothing of what they are.

    Of a birth date, the date format too (an age may be derived from it in staging): the
    format is kept, never a value, a range or a count of values.
    """
    text = column.cast(pl.String).str.strip_chars()
    missing = text.replace("", None).null_count()
    profile = ColumnProfile(name=name, n_rows=column.len(), n_missing=missing, identifier=kind)
    present = text.filter(~(text.is_null() | text.is_in(MISSING_MARKERS)))
    if kind != BIRTH or present.is_empty():
        return profile
    typed = _typed(profile, present)
    if typed.kind == "date":
        return replace(profile, kind="date", date_formats=typed.date_formats)
    return replace(profile, kind=typed.kind)  # a year alone (1960) is an integer


def _profile_column(name: str, column: pl.Series) -> ColumnProfile:
    values = column.str.strip_chars()
    missing = values.is_null() | values.is_in(MISSING_MARKERS)
    markers = set(values.filter(values.is_in(MISSING_MARKERS)).unique().to_list())
    if values.null_count():
        markers.add("")
    present = values.filter(~missing)
    base = ColumnProfile(
        name=name,
        n_rows=column.len(),
        n_missing=int(missing.sum()),
        missing_markers=tuple(m for m in MISSING_MARKERS if m in markers),
        n_distinct=present.n_unique(),
    )
    if present.is_empty():
        return base
    counts = (
        present.rename("value")
        .value_counts(name="count")
        .sort(["count", "value"], descending=[True, False])
    )
    if counts.height <= LOW_CARDINALITY:
        base = replace(base, value_counts=tuple(counts.iter_rows()))
    return _typed(base, present)


def _typed(base: ColumnProfile, present: pl.Series) -> ColumnProfile:
    """Integer, decimal, date or text; a few stray values do not stop a type."""
    frame = present.to_frame("v")
    shares, dates = _shape_shares(frame)
    order = ["date", "integer", "decimal", "time"]
    full = [k for k in order if shares[k] == 1.0]
    kind = full[0] if full else max(order, key=lambda k: shares[k])
    if shares[kind] < TOLERATED_INVALID:
        return replace(base, kind="text")
    n_invalid = round((1 - shares[kind]) * present.len())
    if kind == "date":
        return _as_dates(replace(base, kind="date", n_invalid=n_invalid), frame, dates)
    return _as_numbers(replace(base, kind=kind, n_invalid=n_invalid), present)


def _shape_shares(frame: pl.DataFrame) -> tuple[dict[str, float], dict[str, float]]:
    """The share of values of each shape ('date': read by the best format), and per likely
    date format the share of values it reads."""
    shapes = {"integer": INTEGER, "decimal": DECIMAL, "time": TIME} | DATE_FORMATS
    shares = frame.select(
        pl.col("v").str.contains(pattern).mean().alias(name) for name, pattern in shapes.items()
    ).row(0, named=True)
    likely = [f for f in DATE_FORMATS if shares[f] >= TOLERATED_INVALID]  # parse only those
    dates = {}
    if likely:
        parsed = frame.select(_date(f).is_not_null().mean().alias(f) for f in likely)
        dates = parsed.row(0, named=True)
    shares["date"] = max(dates.values(), default=0.0)
    return shares, dates


def _as_dates(base: ColumnProfile, frame: pl.DataFrame, dates: dict[str, float]) -> ColumnProfile:
    """The formats that read the most values (preferred first), and the range they give."""
    best = max(dates.values())
    candidates = tuple(f for f, share in dates.items() if share == best)
    parsed = frame.select(_date(candidates[0]))["v"]
    if uses_month_names(candidates[0]) and _full_month_names(frame):
        candidates = tuple(f.replace("%b", "%B") for f in candidates)
    return replace(
        base,
        date_formats=candidates,
        minimum=cast("dt.date | None", parsed.min()),  # a Date column's minimum is a date
        maximum=cast("dt.date | None", parsed.max()),
    )


def _as_numbers(base: ColumnProfile, present: pl.Series) -> ColumnProfile:
    """The range of a number column, read with either decimal mark."""
    numbers = present.str.replace(",", ".", literal=True).cast(pl.Float64, strict=False)
    return replace(
        base,
        minimum=cast("float | None", numbers.min()),  # a Float64 column's minimum is a float
        maximum=cast("float | None", numbers.max()),
        decimal_comma=bool(present.str.contains(DECIMAL_COMMA).any()),
    )


def _full_month_names(frame: pl.DataFrame) -> bool:
    """Whether some value names its month in full ('juillet', 'July'): drafted as %B."""
    word = pl.col("v").str.extract(r"(\p{L}+)").str.normalize("NFD")
    plain = word.str.replace_all(r"\p{Mn}", "").str.to_lowercase()
    return bool(frame.select(plain.is_in(list(FULL_MONTH_NAMES)).any()).item())


def _date(fmt: str) -> pl.Expr:
    """Column 'v' read with ``fmt`` as the staging reader reads it (month names in English
    or French); null unless it has the format's shape and a sane year."""
    value = pl.col("v")
    parsed = parse_dates(value, None if fmt == ISO_DATE else fmt)
    plausible = value.str.contains(DATE_FORMATS[fmt]) & parsed.dt.year().is_between(
        *PLAUSIBLE_YEARS
    )
    return pl.when(plausible).then(parsed).alias("v")


def merge_profiles(name: str, members: list[ColumnProfile]) -> ColumnProfile:
    """One profile for a family of wide columns (EN_M0..EN_M12 read as one column)."""
    typed = [p for p in members if p.kind != "empty"]
    kinds = {p.kind for p in typed}
    kind = kinds.pop() if len(kinds) == 1 else ("empty" if not kinds else "text")
    formats = (
        [f for f in typed[0].date_formats if all(f in p.date_formats for p in typed)]
        if typed
        else []
    )
    counts: Counter[str] = Counter()
    for p in members:
        counts.update(dict(p.value_counts))
    complete = all(p.value_counts or p.kind == "empty" for p in members)
    listed = complete and len(counts) <= LOW_CARDINALITY
    return ColumnProfile(
        name=name,
        n_rows=sum(p.n_rows for p in members),
        n_missing=sum(p.n_missing for p in members),
        kind=kind,
        n_invalid=sum(p.n_invalid for p in members),
        date_formats=tuple(formats),
        n_distinct=len(counts),
        value_counts=tuple(counts.most_common()) if listed else (),
    )

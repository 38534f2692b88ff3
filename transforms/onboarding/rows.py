"""What a file's rows say, beyond its columns one by one: read by the draft of each form.

* HADS items numbered 1-14 are in questionnaire order (odd = anxiety) in most exports,
  by subscale (1-7 anxiety, 8-14 depression) in some registries. When the file holds the
  subscale totals too, the rows tell which: the order whose item sums equal the totals.
* Doses written with their unit ('25 mg', '0,5 mg/kg'): the column is its own unit column.
* A long file listing every scheduled visit (a SAS visit grid) has rows where a form has
  no value at all: no record of that form (``empty_rows: skip``), not a missing answer.
"""

from __future__ import annotations

import re
from typing import Any

import polars as pl

from schemas.forms import FORMS, HADS_ITEMS
from transforms.staging.rules import UNIT_TABLE, normalise_unit

FITS = 0.9  # share of complete rows whose item sums must equal the file's totals
_TOTALS = {  # a subscale total column's name
    "a": re.compile(r"(anx|hads[\s_.-]*a(?![a-z])|score[\s_.-]*a(?![a-z]))", re.I),
    "d": re.compile(r"(dep|hads[\s_.-]*d(?![a-z])|score[\s_.-]*d(?![a-z]))", re.I),
}


def hads_by_subscale(suggestion: dict[str, Any], rows: pl.DataFrame) -> dict[str, str] | None:
    """The items re-read by subscale (canonical -> source) when the file's HADS totals
    say so, else None."""
    by_number = _numbered_items(suggestion)
    totals = _total_columns(suggestion, rows)
    if len(by_number) != len(HADS_ITEMS) or totals is None:
        return None
    values = rows.select(
        *[pl.col(s).cast(pl.Float64, strict=False).alias(str(n)) for n, s in by_number.items()],
        pl.col(totals["a"]).cast(pl.Float64, strict=False).alias("a"),
        pl.col(totals["d"]).cast(pl.Float64, strict=False).alias("d"),
    ).drop_nulls()
    if values.height == 0:
        return None
    questionnaire = _fit(values, range(1, 15, 2), range(2, 15, 2))
    subscale = _fit(values, range(1, 8), range(8, 15))
    if subscale < FITS or questionnaire >= FITS:
        return None
    return {
        **{f"hads_a{n}": by_number[n] for n in range(1, 8)},
        **{f"hads_d{n - 7}": by_number[n] for n in range(8, 15)},
    }


def _numbered_items(suggestion: dict[str, Any]) -> dict[int, str]:
    """Item number in questionnaire order -> source column, for items read by number."""
    columns = suggestion["mapping"].get("columns", {})
    found = {}
    for canonical, source in columns.items():
        item = re.fullmatch(r"hads_([ad])([1-7])", canonical)
        if item and re.search(r"\d", source):
            k = int(item[2])
            found[2 * k - 1 if item[1] == "a" else 2 * k] = source
    return found


def _total_columns(suggestion: dict[str, Any], rows: pl.DataFrame) -> dict[str, str] | None:
    read = set(suggestion["sources"])
    found = {}
    for scale, pattern in _TOTALS.items():
        named = [c for c in rows.columns if c not in read and pattern.search(c)]
        if len(named) == 1:
            found[scale] = named[0]
    return found if len(found) == 2 else None


def _fit(values: pl.DataFrame, anxiety, depression) -> float:
    """The share of rows whose two item sums equal the two totals."""
    sums = values.select(
        (pl.sum_horizontal(str(n) for n in anxiety) == pl.col("a"))
        & (pl.sum_horizontal(str(n) for n in depression) == pl.col("d"))
    ).to_series()
    return int(sums.sum()) / max(sums.len(), 1)


NUMBER_THEN_UNIT = re.compile(r"^\s*[+-]?\d+(?:[.,]\d+)?\s*\D")  # '25 mg', '0,5 mg/kg'
EXTRACT_NUMBER = r"^\s*([\d.,]+)"
UNIT_INSIDE = 0.8  # of a dose column's values written with a unit of doses


def doses_with_their_unit(suggestion: dict[str, Any], rows: pl.DataFrame) -> str | None:
    """The dose column whose values carry their unit ('25 mg', '0,5 mg/kg'), if any."""
    columns = suggestion["mapping"].get("columns", {})
    for canonical in ("dose_mg", "dose_mg_per_kg"):
        source = columns.get(canonical)
        if source is None or source not in rows.columns:
            continue
        values = rows[source].drop_nulls().str.strip_chars()
        values = values.filter(values != "").unique().to_list()
        with_unit = [v for v in values if NUMBER_THEN_UNIT.match(v)]
        known = [v for v in with_unit if normalise_unit(v) in UNIT_TABLE["dose_mg"]]
        if values and len(known) >= UNIT_INSIDE * len(values):
            return source
    return None


def rows_without_values(suggestion: dict[str, Any], rows: pl.DataFrame) -> int:
    """Rows of a long file where the form has none of its values (only ids and visit)."""
    form = FORMS[suggestion["form"]]
    not_values = {"patient_id", "month"}  # an event's date or type is a value
    sources = [
        s
        for s, canonical in suggestion["sources"].items()
        if canonical in form.columns() and canonical not in not_values and s in rows.columns
    ]
    if not sources:
        return 0
    markers = suggestion["mapping"].get("missing_values", [])
    empty = [pl.col(s).is_null() | pl.col(s).str.strip_chars().is_in(markers) for s in sources]
    return int(rows.select(pl.all_horizontal(empty).sum()).item())

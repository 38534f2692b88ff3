"""What a pull keeps of a dataset: its columns and the rows of some centres and months.

The query is checked before any data is read (an unknown table fails at once); the
columns are checked against the dataset itself. Lineage columns (``_file_hash``,
``_source_row``, ``_run_id``) are dropped unless ``lineage=True`` or named in ``columns``:
they trace files and runs, which a data manager needs and an analysis does not. A filter
that matches nothing is a warning, not an error: the file is written with its header.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from cohortflow.errors import did_you_mean
from transforms import warehouse
from transforms.delivery.catalogue import PULLABLE
from transforms.delivery.errors import PullError, UnknownColumn, UnknownTable


@dataclass(frozen=True)
class PullQuery:
    """What to pull: a table or view, its columns and the rows kept."""

    table: str
    columns: tuple[str, ...] | None = None
    centres: tuple[str, ...] | None = None
    months: tuple[int, ...] | None = None
    lineage: bool = False


def make_query(
    table: str,
    *,
    columns: Sequence[str] | None = None,
    centres: Sequence[str] | None = None,
    months: Sequence[int] | None = None,
    lineage: bool = False,
) -> PullQuery:
    """A checked query: the table is validated here, before any SQL is built."""
    if table not in PULLABLE:
        raise UnknownTable(
            f"unknown table {table!r}: choose one of {', '.join(PULLABLE)}"
            + did_you_mean(table, PULLABLE)
        )
    columns, centres, months = _as_tuple(columns), _as_tuple(centres), _as_tuple(months)
    centres = None if centres is None else tuple(str(c) for c in centres)
    if columns is not None and (not columns or len(set(columns)) < len(columns)):
        raise PullError("columns must name at least one column, each once")
    if months is not None and not all(type(m) is int for m in months):
        raise PullError(f"months must be whole numbers (0-12), got {list(months)}")
    return PullQuery(table, columns, centres, months, lineage)


def _as_tuple(values: str | int | Sequence | None) -> tuple | None:
    """A single string is one value, not a sequence of characters."""
    if values is None:
        return None
    return (values,) if isinstance(values, str | int) else tuple(values)


def select_rows(frame: pl.DataFrame, query: PullQuery) -> tuple[pl.DataFrame, list[str]]:
    """Filter and select as asked; a filter that matches nothing is a warning, not an error."""
    columns = _output_columns(frame, query)
    kept = frame.filter(_row_filter(frame, query))
    return kept.select(columns), _filter_warnings(frame, kept, query)


def _output_columns(frame: pl.DataFrame, query: PullQuery) -> list[str]:
    """The columns asked, in their order (lineage appended on request), else all but lineage."""
    if query.columns is None:
        dropped = () if query.lineage else warehouse.LINEAGE_COLUMNS
        return [c for c in frame.columns if c not in dropped]
    unknown = [c for c in query.columns if c not in frame.columns]
    if unknown:
        hint = did_you_mean(unknown[0], frame.columns)
        raise UnknownColumn(
            f"unknown column {', '.join(map(repr, unknown))} in {query.table}: "
            f"valid columns are {', '.join(frame.columns)}{hint}"
        )
    extra = [c for c in warehouse.LINEAGE_COLUMNS if c in frame.columns] if query.lineage else []
    return [*query.columns, *[c for c in extra if c not in query.columns]]


def _row_filter(frame: pl.DataFrame, query: PullQuery) -> pl.Expr:
    """The rows of the centres and months asked (every row when neither is asked)."""
    keep = pl.lit(True)
    if query.centres is not None:
        keep &= pl.col("centre_id").is_in(list(query.centres))
    if query.months is not None:
        if "month" not in frame.columns:
            raise PullError(f"{query.table} has no month column: drop the months filter")
        keep &= pl.col("month").is_in(list(query.months))
    return keep


def _filter_warnings(frame: pl.DataFrame, kept: pl.DataFrame, query: PullQuery) -> list[str]:
    """Centres or months asked that have no rows, and an output left with its header only."""
    warnings = []
    filters = (("centre", "centre_id", query.centres), ("month", "month", query.months))
    for what, column, asked in filters:
        present = set(frame[column].to_list()) if asked is not None else set()
        missing = [str(v) for v in asked or () if v not in present]
        if missing:
            hint = _same_centre(missing[0], present) if what == "centre" else ""
            warnings.append(f"no rows in {query.table} for {what} {', '.join(missing)}{hint}")
    if kept.height == 0:
        warnings.append(f"no rows to pull from {query.table}: the output has the header only")
    return warnings


def _same_centre(asked: str, present: set) -> str:
    """'; did you mean C01?' for a centre written another way (c1, C1, c01); centre ids
    differ by a digit, so a mere resemblance would point to the wrong centre."""

    def plain(centre) -> str:
        return re.sub(r"(?<!\d)0+(?=\d)", "", str(centre).casefold())

    same = [str(c) for c in present if plain(c) == plain(asked)]
    return f"; did you mean {same[0]!r}?" if same else ""

"""Naming a file's columns in messages without showing data: when the header is data.

A file exported without its header row has its first record read as the header: its
"column names" are then a patient's id, dates, a phone number. Such a header is suspect
(``header_looks_like_data``), and every message about the file names columns by position
and inferred type ("column 1 (id-like text), column 3 (date)"), never by header cell.
"""

from __future__ import annotations

import re

import polars as pl

from transforms.staging.identifiers import VALUE_PATTERNS

SHOWN_COLUMNS = 20  # columns described in one message
SHAPES = {  # checked in this order; a header cell of any of these shapes is data
    "integer": r"^[+-]?\d+$",
    "decimal": r"^[+-]?\d*[.,]\d+$",
    "date": r"^\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?)?$",
    "id-like text": r"^[A-Za-z]{0,5}\d*[-_/]?\d{3,}$",
    **{f"{kind} (identifier)": pattern for kind, pattern in VALUE_PATTERNS.items()},
}
_SHAPES = {name: re.compile(pattern) for name, pattern in SHAPES.items()}
_RENAMED = re.compile(r"_duplicated_\d+$|^__UNNAMED__\d+$")  # polars / calamine renames


def cell_shape(text: str) -> str | None:
    """The data shape a single cell has, or None for plain text."""
    value = _RENAMED.sub("", text).strip()
    return next((name for name, pattern in _SHAPES.items() if pattern.match(value)), None)


def header_looks_like_data(columns: list[str]) -> bool:
    """Whether any header cell is shaped like a value (a number, date, id, phone...)."""
    return any(cell_shape(c) is not None for c in columns)


def column_label(position: int, name: str, suspect: bool) -> str:
    """'column 3' when the header is suspect, else "column 3 'Poids (kg)'"."""
    return f"column {position}" if suspect else f"column {position} {shown(name)}"


def shown(name: str, limit: int = 60) -> str:
    """A column name as quoted in a message, cut short if it is absurdly long."""
    return repr(name if len(name) <= limit else name[:limit] + "...")


def columns_by_position(raw: pl.DataFrame) -> str:
    """The columns as positions and inferred types: '4 columns: 1 id-like text, 2 text'.

    Types are inferred from the header cell and the first rows, read as the same column.
    """
    names, positions = raw.columns, list(range(raw.width))
    head = raw.head(20)  # by position, never pl.col(name): a header may read '*'
    kinds = []
    for n, i in enumerate(positions[:SHOWN_COLUMNS], 1):
        cells = [names[i], *(v for v in head.to_series(i).to_list() if v)]
        shapes = [cell_shape(str(v)) or "text" for v in cells]
        kinds.append(f"{n} {max(sorted(set(shapes)), key=shapes.count)}")
    more = ", ..." if len(positions) > SHOWN_COLUMNS else ""
    return f"{len(positions)} columns: {', '.join(kinds)}{more}"

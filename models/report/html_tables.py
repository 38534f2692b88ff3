"""Any result table as HTML: every column it has, numbers formatted for reading.

A table is shown as published, whatever its columns (an analysis that adds a status or a
degrees-of-freedom column is shown with it). p-values read ``< 0.001``; other numbers keep
three or four significant figures; a long table shows its first rows and names its file.
"""

from __future__ import annotations

import datetime as dt
import html
import math

import polars as pl

from models.formatting import p_value

MAX_ROWS = 40


def cell(value: object, column: str) -> str:
    """One value as text: p-values, counts, estimates, booleans, dates, text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if "p_value" in column:
            return p_value(value)
        counted = column.startswith("n_") and value.is_integer()  # a count kept as a float
        return str(int(value)) if counted else number(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return str(value)


def number(value: float) -> str:
    """Three decimals around 1, four significant figures below, thousands grouped above."""
    if math.isnan(value):
        return "n/a"
    size = abs(value)
    if size >= 1000:
        return f"{value:,.1f}"
    if size >= 1 or value == 0:
        return f"{value:.3f}"
    return f"{value:.4g}" if size >= 1e-4 else f"{value:.2e}"


def frame_table(
    frame: pl.DataFrame,
    *,
    published: dict[str, str] | None = None,
    key: str | None = None,
    csv: str | None = None,
) -> str:
    """``frame`` as an HTML table; ``published`` adds the paper's figure to the rows whose
    ``key`` column holds one of its keys; past MAX_ROWS rows, the first ones and ``csv``."""
    shown = frame.head(MAX_ROWS)
    columns = list(frame.columns)
    extra = bool(published and key in columns)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    head += '<th class="paper">published</th>' if extra else ""
    rows = []
    for row in shown.iter_rows(named=True):
        cells = "".join(_td(row[c], c) for c in columns)
        if extra and published is not None and key is not None:
            paper = published.get(str(row[key]), "")
            cells += f'<td class="paper">{html.escape(paper)}</td>'
        rows.append(f"<tr>{cells}</tr>")
    more = ""
    if frame.height > MAX_ROWS:
        where = f": every row in {csv}" if csv else ""
        more = note(f"First {MAX_ROWS} of {frame.height} rows{where}.")
    return wrapped(head, "".join(rows)) + more


def _td(value: object, column: str) -> str:
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    css = ' class="num"' if numeric else ""
    return f"<td{css}>{html.escape(cell(value, column))}</td>"


def rows_table(header: list[str], rows: list[list[str]], numeric_from: int = 1) -> str:
    """A table of ready-made text cells: columns from ``numeric_from`` right-aligned, a
    last column headed ``published`` in the paper's colour."""
    paper = header[-1] == "published"
    classes = [
        ' class="paper"'
        if paper and i == len(header) - 1
        else (" class=num" if i >= numeric_from else "")
        for i in range(len(header))
    ]
    head = "".join(f"<th{c}>{html.escape(h)}</th>" for c, h in zip(classes, header, strict=True))
    body = "".join(
        "<tr>"
        + "".join(f"<td{c}>{html.escape(text)}</td>" for c, text in zip(classes, row, strict=True))
        + "</tr>"
        for row in rows
    )
    return wrapped(head, body)


def wrapped(head: str, body: str) -> str:
    """A table that scrolls sideways inside the page when it is wider than the page."""
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return f'<div class="wide">{table}</div>'


def note(text: str) -> str:
    """A small explanatory line under a title or a table."""
    return f'<p class="note">{html.escape(text)}</p>'

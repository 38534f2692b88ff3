"""Files for people open in spreadsheets: no cell of ours is ever run as a formula.

Every CSV the product writes for a person (``quarantine.csv``, the centres' query files,
pulls) goes through ``spreadsheet_safe``: a text cell that starts with ``= + - @``, or with
a tab, CR or LF, or with blanks before one of ``= + - @``, gets a leading ``'`` (OWASP CSV
injection), so ``=HYPERLINK(...)`` or ``=cmd|' /C calc'!A0`` from an export reads as text.
Numbers, dates and booleans are not text and stay as they are, and so does a text that is
a plain number (``-3``, ``+2.5``: nothing to run). The reading side is in
``staging.workbook``: a workbook's formula cells are never read as their cached numbers.

Kept in staging, the lowest room, so that warehouse, quality and delivery share it.
"""

from __future__ import annotations

import polars as pl

FORMULA_START = r"^(\s*[=+\-@]|[\t\r\n])"  # what a spreadsheet may evaluate
PLAIN_NUMBER = r"^\s*[+-]?\d+([.,]\d+)?\s*$"


def formula_like(value: pl.Expr) -> pl.Expr:
    """Whether a text value would be evaluated by a spreadsheet (a plain number would not)."""
    return value.str.contains(FORMULA_START) & ~value.str.contains(PLAIN_NUMBER)


def spreadsheet_safe(frame: pl.DataFrame) -> pl.DataFrame:
    """Prefix ``'`` to text a spreadsheet would run as a formula (numbers are not text)."""
    text = [name for name, dtype in frame.schema.items() if dtype == pl.String]
    return frame.with_columns(
        pl.when(formula_like(pl.col(name)))
        .then(pl.lit("'") + pl.col(name))
        .otherwise(pl.col(name))
        .alias(name)
        for name in text
    )

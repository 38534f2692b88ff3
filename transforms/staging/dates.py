"""Dates as centres write them: ISO, any strptime format, month names in English or French.

polars reads English month abbreviations only (``%b``: 'Jul', any case); a centre writes
'July', 'juil.', 'juillet' or 'août'. Before parsing, month names are turned into the
English abbreviation, so that ``%d-%b-%Y`` and ``%d %B %Y`` read them all.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

EXCEL_DATE = "excel"  # a date format: Excel serial day numbers (1900 system)
_EXCEL_EPOCH = dt.date(1899, 12, 30)

# Month names and abbreviations (lower case, accents removed) -> polars' %b.
_MONTHS = {
    "Jan": ["january", "janvier", "janv", "jan"],
    "Feb": ["february", "fevrier", "fevr", "fev", "feb"],
    "Mar": ["march", "mars", "mar"],
    "Apr": ["april", "avril", "avr", "apr"],
    "May": ["may", "mai"],
    "Jun": ["june", "juin", "jun"],
    "Jul": ["july", "juillet", "juil", "jul"],
    "Aug": ["august", "aout", "aou", "aug"],
    "Sep": ["september", "septembre", "sept", "sep"],
    "Oct": ["october", "octobre", "oct"],
    "Nov": ["november", "novembre", "nov"],
    "Dec": ["december", "decembre", "dec"],
}
_NAMES = sorted(
    ((name, abbr) for abbr, names in _MONTHS.items() for name in names),
    key=lambda pair: -len(pair[0]),  # longest first: 'juillet' before 'juil' before 'jul'
)
MIDNIGHT = r"[ T]00:00:00(\.0+)?$"  # ISO dates as a spreadsheet renders them


def uses_month_names(fmt: str | None) -> bool:
    return fmt is not None and ("%b" in fmt or "%B" in fmt)


def english_months(text: pl.Expr) -> pl.Expr:
    """'15 juil. 2016' -> '15 Jul 2016'; 'Août' -> 'Aug' (dates only: every word is looked
    at, so this is for columns holding dates)."""
    plain = text.str.normalize("NFD").str.replace_all(r"\p{Mn}", "").str.to_lowercase()
    plain = plain.str.replace_all(r"(\p{L})\.", "$1")
    # leftmost: of the names starting at a position, the first listed (the longest)
    return plain.str.replace_many(
        [name for name, _ in _NAMES], [abbr for _, abbr in _NAMES], leftmost=True
    )


_OFFSET = r"(?:Z|[+-]\d{2}:?\d{2})$"  # ISO 8601's time zone: 'Z', '+02:00', '-0500'


def parse_dates(text: pl.Expr, fmt: str | None) -> pl.Expr:
    """Text -> Date by a strptime format (ISO when None, Excel day numbers for 'excel');
    unreadable -> null.

    A time zone in the format (``%z``, ``%:z`` or a literal ``Z``) is read as written: the
    date is the local date the centre recorded (a call at 00:30+02:00 is that day, not the
    day before in UTC).
    """
    if fmt == EXCEL_DATE:
        days = text.cast(pl.Float64, strict=False).floor().cast(pl.Int64)
        return pl.lit(_EXCEL_EPOCH) + pl.duration(days=days)
    if fmt is not None and ("%z" in fmt or "%:z" in fmt or fmt.endswith("Z")):
        text = text.str.replace(_OFFSET, "")
        fmt = fmt.replace("%:z", "").replace("%z", "").removesuffix("Z")
    if fmt is None:
        return text.str.replace(MIDNIGHT, "").str.strptime(pl.Date, "%Y-%m-%d", strict=False)
    if uses_month_names(fmt):
        text, fmt = english_months(text), fmt.replace("%B", "%b")
    return text.str.strptime(pl.Date, fmt, strict=False)

"""One export file profiled: its format and its columns, or why it could not be profiled.

A file the profiler cannot read (another kind than CSV, UTF-16, empty, unparseable, over
one of the reader's limits) is kept with the reason, so that the draft and the report can
say so instead of failing. A file whose first row is data (no header row) is profiled by
column position, its first row counted as data: its cells are never shown as names.
``harmonise_formats`` lends a file without evidence (ASCII only, no decimals) the locale
of the centre's other files.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import polars as pl

from cohortflow.errors import FileRejected
from transforms.onboarding.columns import ColumnProfile, profile_table
from transforms.onboarding.sniff import read_csv_text, sniff_csv_format
from transforms.staging.headers import cell_shape
from transforms.staging.limits import DEFAULT_LIMITS, check_export, check_size
from transforms.staging.mapping import CsvFormat

CSV_SUFFIXES = {".csv", ".tsv", ".txt"}


@dataclass(frozen=True)
class FileProfile:
    """One export file: its format, its columns, or why it was not profiled."""

    path: Path
    format: CsvFormat | None = None
    n_rows: int = 0
    columns: list[ColumnProfile] = field(default_factory=list)
    skipped: str | None = None  # why the file could not be profiled
    ascii_only: bool = False  # the encoding guess has nothing to go on
    headerless: bool = False  # the first row is data: columns are named by position

    @property
    def has_decimals(self) -> bool:
        """Whether any column holds decimal numbers (the decimal mark guess rests on them)."""
        return any(p.kind == "decimal" for p in self.columns)


def profile_file(path: Path) -> FileProfile:
    """Sniff and profile one export file (CSV only; others are skipped with the reason)."""
    suffix = path.suffix.lower()
    if suffix not in CSV_SUFFIXES:
        kind = {".xlsx": "XLSX", ".xls": "XLS", ".parquet": "parquet"}.get(suffix, suffix)
        return FileProfile(path, skipped=f"{kind or 'this kind of'} files are not profiled yet")
    try:
        check_size(path.stat().st_size, path, DEFAULT_LIMITS)  # the reader's limits
        content = path.read_bytes()
    except OSError as exc:
        return FileProfile(path, skipped=f"cannot read it: {exc.strerror or exc}")
    except FileRejected as exc:
        return FileProfile(path, skipped=f"{exc.rule}: {exc.detail}")
    if content.startswith((b"\xff\xfe", b"\xfe\xff")):
        return FileProfile(path, skipped="UTF-16 text: ask the centre for a UTF-8 export")
    if not content or content.isspace():
        return FileProfile(path, skipped="empty file")
    try:
        check_export(content, CsvFormat(), path, DEFAULT_LIMITS)  # lines, before sniffing them
        fmt = sniff_csv_format(content)
        check_export(content, fmt, path, DEFAULT_LIMITS)  # columns, by the file's delimiter
    except FileRejected as exc:
        return FileProfile(path, skipped=f"{exc.rule}: {exc.detail}")
    try:
        frame = read_csv_text(content, fmt)
    except pl.exceptions.PolarsError as exc:
        return FileProfile(path, fmt, skipped=f"unreadable CSV: {str(exc).splitlines()[0]}")
    frame, headerless = _header_as_read(frame)
    columns = profile_table(frame)
    return FileProfile(
        path, fmt, frame.height, columns, ascii_only=content.isascii(), headerless=headerless
    )


def _header_as_read(frame: pl.DataFrame) -> tuple[pl.DataFrame, bool]:
    """The frame with no data shown as a column name: a first row mostly shaped like data
    (ids, dates, numbers, phones) is data (True); a lone such cell in a header is renamed
    by its position."""
    shaped = [cell_shape(c) is not None for c in frame.columns]
    if shaped and sum(shaped) >= len(shaped) / 2:
        return first_row_as_data(frame), True
    if any(shaped):
        names = frame.columns
        renames = {names[i]: f"column {i + 1}" for i, data in enumerate(shaped) if data}
        return frame.rename(renames), False
    return frame, False


def first_row_as_data(frame: pl.DataFrame) -> pl.DataFrame:
    """A file read with its first row as the header, read again as rows only: that row
    back among the data, the columns named by position ('column 1', ...)."""
    names = [f"column {i}" for i in range(1, frame.width + 1)]
    cells = [re.sub(r"_duplicated_\d+$", "", c) for c in frame.columns]  # polars' renames
    first = pl.DataFrame([cells], schema=dict.fromkeys(names, pl.String), orient="row")
    rows = frame.clone()
    rows.columns = names
    return pl.concat([first, rows.cast(pl.String)])


def harmonise_formats(profiles: list[FileProfile]) -> list[FileProfile]:
    """A file without evidence (ASCII only, no decimals) takes the centre's usual locale."""
    read = [(p, p.format) for p in profiles if p.format is not None and not p.skipped]
    encodings = Counter(fmt.encoding for p, fmt in read if not p.ascii_only)
    decimals = Counter(fmt.decimal for p, fmt in read if p.has_decimals)
    out = []
    for p in profiles:
        if p.format is not None and not p.skipped:
            fmt = p.format
            if p.ascii_only and encodings:
                fmt = fmt.model_copy(update={"encoding": encodings.most_common(1)[0][0]})
            if not p.has_decimals and decimals and fmt.delimiter != ",":
                fmt = fmt.model_copy(update={"decimal": decimals.most_common(1)[0][0]})
            p = replace(p, format=fmt)
        out.append(p)
    return out

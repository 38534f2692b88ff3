"""One export file profiled: its format and its columns, or why it could not be profiled.

A file the profiler cannot read (another kind than CSV, UTF-16, empty, unparseable) is
kept with the reason, so that the draft and the report can say so instead of failing.
``harmonise_formats`` lends a file without evidence (ASCII only, no decimals) the locale
of the centre's other files.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import polars as pl

from transforms.onboarding.columns import ColumnProfile, profile_table
from transforms.onboarding.sniff import read_csv_text, sniff_csv_format
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
        content = path.read_bytes()
    except OSError as exc:
        return FileProfile(path, skipped=f"cannot read it: {exc.strerror or exc}")
    if content.startswith((b"\xff\xfe", b"\xfe\xff")):
        return FileProfile(path, skipped="UTF-16 text: ask the centre for a UTF-8 export")
    if not content.strip():
        return FileProfile(path, skipped="empty file")
    fmt = sniff_csv_format(content)
    try:
        frame = read_csv_text(content, fmt)
    except pl.exceptions.PolarsError as exc:
        return FileProfile(path, fmt, skipped=f"unreadable CSV: {str(exc).splitlines()[0]}")
    columns = profile_table(frame)
    return FileProfile(path, fmt, frame.height, columns, ascii_only=content.isascii())


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

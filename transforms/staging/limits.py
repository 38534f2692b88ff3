"""Every export is measured before it is read: size, decompressed size, columns, lines, rows.

A file over a limit is rejected whole with the limit named (invariant 12), so that one
hostile or broken export costs the night seconds and about its own size in memory, never
hours or gigabytes, and its centre's other files still load. What is measured, and how,
is bounded itself:

* a CSV's lines are measured in blocks of its bytes (no copy of the file), and its header
  is parsed alone once its length is known to be within the limit;
* a workbook's ZIP directory says what each part would decompress to before anything is
  inflated; the sheet read is then streamed through once (its rows counted, formula cells
  found) without keeping it;
* a parquet file's footer says its rows, columns and uncompressed size.

``check_export`` returns what it measured (the reader's own accounting, which the tests
read) or raises ``FileRejected``. Limits come from the workspace's settings
(``ReadLimits.from_settings``).
"""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass
from typing import Literal

import numpy as np

from cohortflow.errors import FileRejected
from cohortflow.settings import Settings
from transforms.staging.mapping import CsvFormat, ExportFormat, XlsxFormat
from transforms.staging.workbook import WorkbookScan, formula_rejection, scan_sheet

MB = 1_000_000
KB = 1_000
BLOCK = 8 * MB  # bytes looked at per step when measuring lines
RATIO_FLOOR = MB  # parts smaller than this are not held to the compression ratio


@dataclass(frozen=True)
class ReadLimits:
    """What one export file may be; the defaults fit real exports with room to spare."""

    max_file_bytes: int = 500 * MB
    max_uncompressed_bytes: int = 2_000 * MB  # a workbook (or parquet file) once decompressed
    max_compression_ratio: float = 100.0  # of any part of a workbook over RATIO_FLOOR
    max_columns: int = 2_000
    max_line_bytes: int = 1_000 * KB
    max_rows: int = 5_000_000

    @classmethod
    def from_settings(cls, settings: Settings) -> ReadLimits:
        """The workspace's limits (``COHORTFLOW_MAX_*``)."""
        return cls(
            max_file_bytes=int(settings.max_file_mb * MB),
            max_uncompressed_bytes=int(settings.max_uncompressed_mb * MB),
            max_compression_ratio=settings.max_compression_ratio,
            max_columns=settings.max_columns,
            max_line_bytes=int(settings.max_line_kb * KB),
            max_rows=settings.max_rows,
        )


DEFAULT_LIMITS = ReadLimits()


@dataclass(frozen=True)
class Measured:
    """What was measured of a file before it was read (None: not measured for its kind)."""

    size_bytes: int
    columns: int | None = None
    rows: int | None = None  # data rows (CSV: lines after the header, an upper bound)
    longest_line_bytes: int | None = None
    uncompressed_bytes: int | None = None  # as the ZIP directory or parquet footer declares
    compression_ratio: float | None = None  # the highest of any part held to the limit


def _over(path, rule: str, what: str, limit: str, variable: str) -> FileRejected:
    """The one-line rejection naming the measure, the limit and the setting that sets it."""
    return FileRejected(
        str(path),
        rule,
        f"{what}, over the limit of {limit} ({variable}); ask the centre for a smaller "
        "export (e.g. one per form or period), or raise the limit for this workspace",
    )


def _mb(n: float) -> str:
    """A measured size for people: '612.3 MB', '2.1 KB'."""
    return f"{n / MB:,.1f} MB" if n >= MB else f"{n / KB:,.1f} KB"


def _in(n: float, unit: int, name: str) -> str:
    """A limit in the unit of the setting that sets it: '500 MB', '1,000 KB', '0.5 MB'."""
    return f"{n / unit:,.6f}".rstrip("0").rstrip(".") + f" {name}"


def check_size(size: int, path, limits: ReadLimits) -> None:
    """Before a byte is read: the file's size on disk."""
    if size > limits.max_file_bytes:
        raise _over(
            path,
            "file too large",
            f"the file is {_mb(size)}",
            _in(limits.max_file_bytes, MB, "MB"),
            "COHORTFLOW_MAX_FILE_MB",
        )


def check_export(
    content: bytes, fmt: ExportFormat, path, limits: ReadLimits = DEFAULT_LIMITS
) -> Measured:
    """Measure an export before it is parsed; reject it if it is over a limit."""
    check_size(len(content), path, limits)
    if isinstance(fmt, CsvFormat):
        return _check_csv(content, fmt, path, limits)
    if isinstance(fmt, XlsxFormat):
        return _check_workbook(content, fmt, path, limits)
    return _check_parquet(content, path, limits)


# --- CSV -------------------------------------------------------------------------------


def line_lengths(content: bytes) -> tuple[int, int]:
    """(number of lines, longest line in bytes), measured in blocks without copying the file.

    A line ends at LF or CR (so CRLF, LF and old Mac CR files all count their lines).
    """
    view = memoryview(content)
    longest, start = 0, 0  # start: where the line being measured began
    for offset in range(0, len(content), BLOCK):
        block = np.frombuffer(view[offset : offset + BLOCK], dtype=np.uint8)
        ends = np.flatnonzero((block == 10) | (block == 13)) + offset
        if ends.size:
            lengths = np.diff(ends, prepend=start - 1) - 1
            longest = max(longest, int(lengths.max()))
            start = int(ends[-1]) + 1
    longest = max(longest, len(content) - start)
    return _count_lines(content), longest


def _count_lines(content: bytes) -> int:
    """Lines of text, whatever the line endings (CRLF counts once)."""
    newlines = content.count(b"\n") or content.count(b"\r")
    return newlines + (0 if content.endswith((b"\n", b"\r")) or not content else 1)


def _check_csv(content: bytes, fmt: CsvFormat, path, limits: ReadLimits) -> Measured:
    lines, longest = line_lengths(content)
    if longest > limits.max_line_bytes:
        raise _over(
            path,
            "line too long",
            f"a line is {_mb(longest)}",
            _in(limits.max_line_bytes, KB, "KB"),
            "COHORTFLOW_MAX_LINE_KB",
        )
    columns = header_width(content, fmt)
    if columns > limits.max_columns:
        raise _over(
            path,
            "too many columns",
            f"the header has {columns:,} columns",
            f"{limits.max_columns:,}",
            "COHORTFLOW_MAX_COLUMNS",
        )
    rows = max(lines - 1, 0)
    _check_rows(rows, path, limits, "lines after the header")
    return Measured(len(content), columns, rows, longest)


def header_width(content: bytes, fmt: CsvFormat) -> int:
    """The number of fields of the first line (already known to be short enough)."""
    first = content.removeprefix(b"\xef\xbb\xbf")
    for end in (b"\n", b"\r"):
        first = first.split(end, 1)[0]
    text = first.decode(fmt.encoding, errors="replace")
    quoting: Literal[0, 3] = csv.QUOTE_MINIMAL if fmt.quote_char else csv.QUOTE_NONE
    reader = csv.reader(
        io.StringIO(text), delimiter=fmt.delimiter, quotechar=fmt.quote_char, quoting=quoting
    )
    try:
        return len(next(reader, []))
    except csv.Error:  # a stray quote: the reader will say where
        return text.count(fmt.delimiter) + 1


def _check_rows(rows: int, path, limits: ReadLimits, counted: str) -> None:
    if rows > limits.max_rows:
        raise _over(
            path,
            "too many rows",
            f"the file has {rows:,} {counted}",
            f"{limits.max_rows:,} rows",
            "COHORTFLOW_MAX_ROWS",
        )


# --- XLSX ------------------------------------------------------------------------------


def _check_workbook(content: bytes, fmt: XlsxFormat, path, limits: ReadLimits) -> Measured:
    """The ZIP directory's declared sizes, then one streamed pass over the sheet read."""
    if not content.startswith(b"PK\x03\x04"):
        return Measured(len(content))  # not a ZIP: the reader says what it is
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
        parts = archive.infolist()
    except (zipfile.BadZipFile, ValueError, EOFError) as exc:
        raise FileRejected(
            str(path),
            "unreadable XLSX",
            "the workbook is truncated or damaged (not a readable ZIP archive)",
        ) from exc
    declared = sum(p.file_size for p in parts)
    ratio = max(
        (p.file_size / max(p.compress_size, 1) for p in parts if p.file_size > RATIO_FLOOR),
        default=None,
    )
    _check_declared(declared, ratio, path, limits)
    scan = _scan(archive, fmt.sheet, path)
    measured = Measured(len(content), scan.columns, scan.data_rows, None, declared, ratio)
    if scan.columns is not None and scan.columns > limits.max_columns:
        raise _over(
            path,
            "too many columns",
            f"sheet {fmt.sheet!r} spans {scan.columns:,} columns",
            f"{limits.max_columns:,}",
            "COHORTFLOW_MAX_COLUMNS",
        )
    _check_rows(scan.data_rows, path, limits, f"rows in sheet {fmt.sheet!r} after the header")
    if scan.formulas:
        raise formula_rejection(path, fmt.sheet, scan)
    return measured


def _check_declared(declared: int, ratio: float | None, path, limits: ReadLimits) -> None:
    if declared > limits.max_uncompressed_bytes:
        raise _over(
            path,
            "workbook too large",
            f"it would decompress to {_mb(declared)} (declared by its ZIP directory)",
            _in(limits.max_uncompressed_bytes, MB, "MB"),
            "COHORTFLOW_MAX_UNCOMPRESSED_MB",
        )
    if ratio is not None and ratio > limits.max_compression_ratio:
        raise _over(
            path,
            "workbook too compressed",
            f"a part of it decompresses {ratio:,.0f} times its stored size (a ZIP bomb?)",
            f"{limits.max_compression_ratio:g} times",
            "COHORTFLOW_MAX_COMPRESSION_RATIO",
        )


def _scan(archive: zipfile.ZipFile, sheet: str, path) -> WorkbookScan:
    """The sheet scanned, or the file rejected: a damaged part fails to inflate (zlib,
    a bad CRC) or to parse (XML) in as many ways as there are damages."""
    try:
        return scan_sheet(archive, sheet)
    except Exception as exc:
        detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise FileRejected(
            str(path), "unreadable XLSX", f"the workbook is damaged ({detail})"
        ) from exc


# --- parquet ---------------------------------------------------------------------------


def _check_parquet(content: bytes, path, limits: ReadLimits) -> Measured:
    """What the footer declares; a file without a readable footer is left to the reader."""
    import pyarrow.parquet as pq  # only for parquet exports

    try:
        meta = pq.ParquetFile(io.BytesIO(content)).metadata
    except Exception:  # the reader rejects it with its own words
        return Measured(len(content))
    declared = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    if meta.num_columns > limits.max_columns:
        raise _over(
            path,
            "too many columns",
            f"the file has {meta.num_columns:,} columns",
            f"{limits.max_columns:,}",
            "COHORTFLOW_MAX_COLUMNS",
        )
    _check_rows(meta.num_rows, path, limits, "rows")
    if declared > limits.max_uncompressed_bytes:
        raise _over(
            path,
            "file too large",
            f"it would decompress to {_mb(declared)} (declared by its footer)",
            _in(limits.max_uncompressed_bytes, MB, "MB"),
            "COHORTFLOW_MAX_UNCOMPRESSED_MB",
        )
    return Measured(len(content), meta.num_columns, meta.num_rows, None, declared)

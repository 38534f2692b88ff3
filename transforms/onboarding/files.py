"""One export file profiled (one profile per sheet of a workbook), or why it could not be.

A file the profiler cannot read (another kind than CSV, XLSX or parquet, empty,
unparseable, over one of the reader's limits) is kept with the reason, so that the draft
and the report can say so instead of failing. Workbooks and parquet files are measured and
read by the staging reader's own functions (``staging.limits``, ``staging.raw``), so that
what is profiled is what the night will read. A file whose first row is data (no header
row) is profiled by column position, its first row counted as data: its cells are never
shown as names. ``harmonise_formats`` lends a CSV without evidence (ASCII only, no
decimals) the locale of the centre's other files; ``harmonise_dates`` lends a date column
whose every value reads day first and month first the reading of the centre's other dates.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import fastexcel
import polars as pl

from cohortflow.errors import FileRejected
from transforms.onboarding.columns import ColumnProfile, ambiguous_partner, profile_table
from transforms.onboarding.shapes import AMBIGUOUS_DATES
from transforms.onboarding.sniff import TITLE_LINES, read_csv_text, sniff_csv_format, title_lines
from transforms.staging.headers import cell_shape
from transforms.staging.limits import DEFAULT_LIMITS, check_export, check_size
from transforms.staging.mapping import CsvFormat, ExportFormat, ParquetFormat, XlsxFormat
from transforms.staging.raw import parse_text_table

CSV_SUFFIXES = {".csv", ".tsv", ".txt"}


@dataclass(frozen=True)
class FileProfile:
    """One export file (or one sheet of a workbook): its format, its columns, or why it
    was not profiled."""

    path: Path
    format: ExportFormat | None = None
    n_rows: int = 0
    columns: list[ColumnProfile] = field(default_factory=list)
    skipped: str | None = None  # why the file could not be profiled
    ascii_only: bool = False  # the encoding guess has nothing to go on
    headerless: bool = False  # the first row is data: columns are named by position
    rows: pl.DataFrame | None = field(default=None, repr=False, compare=False)  # as text

    @property
    def has_decimals(self) -> bool:
        """Whether any column holds decimal numbers (the decimal mark guess rests on them)."""
        return any(p.kind == "decimal" for p in self.columns)

    @property
    def label(self) -> str:
        """The file's name, and the sheet's for one sheet of a workbook."""
        sheet = self.format.sheet if isinstance(self.format, XlsxFormat) else None
        return self.path.name if sheet is None else f"{self.path.name} (sheet {sheet!r})"


def profile_export(path: Path) -> list[FileProfile]:
    """Profile one export: a profile per sheet of a workbook, one for any other file."""
    if path.suffix.lower() != ".xlsx":
        return [profile_file(path)]
    try:
        content = _read_bounded(path)
        if not content.startswith(b"PK\x03\x04"):
            raise _Unprofiled("unreadable XLSX: not an .xlsx workbook (a ZIP archive)")
        sheets = fastexcel.read_excel(content).sheet_names
    except _Unprofiled as exc:
        return [FileProfile(path, skipped=str(exc))]
    except Exception as exc:  # fastexcel raises its own untyped errors
        return [FileProfile(path, skipped=f"unreadable XLSX: {_first_line(exc)}")]
    return [_profile_table(path, content, XlsxFormat(sheet=sheet)) for sheet in sheets]


def profile_file(path: Path) -> FileProfile:
    """Sniff and profile one CSV or parquet file (a workbook: its first sheet; others are
    skipped with the reason)."""
    suffix = path.suffix.lower()
    if suffix not in {*CSV_SUFFIXES, ".parquet", ".xlsx"}:
        what = "XLS files (the old Excel format)" if suffix == ".xls" else f"{suffix!r} files"
        return FileProfile(path, skipped=f"{what} are not profiled: ask for CSV, XLSX or parquet")
    if suffix == ".xlsx":
        return profile_export(path)[0]
    try:
        content = _read_bounded(path)
    except _Unprofiled as exc:
        return FileProfile(path, skipped=str(exc))
    if suffix == ".parquet":
        return _profile_table(path, content, ParquetFormat())
    return _profile_csv(path, content)


class _Unprofiled(Exception):
    """Why a file cannot be profiled, in words for the draft and the report."""


def _read_bounded(path: Path) -> bytes:
    """The file's bytes, unless it is over the reader's size limit or cannot be read."""
    try:
        check_size(path.stat().st_size, path, DEFAULT_LIMITS)  # the reader's limits
        content = path.read_bytes()
    except OSError as exc:
        raise _Unprofiled(f"cannot read it: {exc.strerror or exc}") from exc
    except FileRejected as exc:
        raise _Unprofiled(f"{exc.rule}: {exc.detail}") from exc
    if not content or content.isspace():
        raise _Unprofiled("empty file")
    return content


def _profile_csv(path: Path, content: bytes) -> FileProfile:
    try:
        check_export(content, CsvFormat(), path, DEFAULT_LIMITS)  # lines, before sniffing them
        fmt = sniff_csv_format(content)
        skip = title_lines(content, fmt)
        if skip:  # the dialect of the table, not of its title
            table = b"\n".join(content.split(b"\n")[skip:])
            fmt = sniff_csv_format(table).model_copy(update={"skip_rows": skip})
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
        path,
        fmt,
        frame.height,
        columns,
        ascii_only=content.isascii(),
        headerless=headerless,
        rows=frame,
    )


def _profile_table(path: Path, content: bytes, fmt: XlsxFormat | ParquetFormat) -> FileProfile:
    """A sheet or a parquet file, measured and read as the staging reader does."""
    try:
        check_export(content, fmt, path, DEFAULT_LIMITS)
        frame = parse_text_table(content, fmt, path)
    except FileRejected as exc:
        return FileProfile(path, fmt, skipped=f"{exc.rule}: {exc.detail}")
    if frame.width == 0:
        return FileProfile(path, fmt, skipped="empty sheet" if fmt.kind == "xlsx" else "no columns")
    headerless = False
    if isinstance(fmt, XlsxFormat):  # parquet columns are named by the writer, never data
        frame, fmt = _below_title(content, path, frame, fmt)
        frame, headerless = _header_as_read(frame)
    return FileProfile(
        path, fmt, frame.height, profile_table(frame), headerless=headerless, rows=frame
    )


def _below_title(
    content: bytes, path: Path, frame: pl.DataFrame, fmt: XlsxFormat
) -> tuple[pl.DataFrame, XlsxFormat]:
    """A sheet whose first rows are a title (the header row read is mostly unnamed cells):
    read again from the first row that names most of its columns."""
    for skip in range(1, TITLE_LINES + 1):
        if not _mostly_unnamed(frame.columns):
            return frame, fmt if skip == 1 else fmt.model_copy(update={"skip_rows": skip - 1})
        try:
            frame = parse_text_table(content, fmt.model_copy(update={"skip_rows": skip}), path)
        except FileRejected:
            break
    return frame, fmt


def _mostly_unnamed(columns: list[str]) -> bool:
    return len(columns) >= 3 and sum(c.startswith("__UNNAMED__") for c in columns) * 2 > len(
        columns
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]


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
    """A CSV without evidence (ASCII only, no decimals) takes the centre's usual locale."""
    read = [(p, p.format) for p in profiles if isinstance(p.format, CsvFormat) and not p.skipped]
    encodings = Counter(fmt.encoding for p, fmt in read if not p.ascii_only)
    decimals = Counter(fmt.decimal for p, fmt in read if p.has_decimals)
    out = []
    for p in profiles:
        if isinstance(p.format, CsvFormat) and not p.skipped:
            fmt = p.format
            if p.ascii_only and encodings:
                fmt = fmt.model_copy(update={"encoding": encodings.most_common(1)[0][0]})
            if not p.has_decimals and decimals and fmt.delimiter != ",":
                fmt = fmt.model_copy(update={"decimal": decimals.most_common(1)[0][0]})
            p = replace(p, format=fmt)
        out.append(p)
    return out


def harmonise_dates(profiles: list[FileProfile]) -> list[FileProfile]:
    """A date column where every value reads day first and month first (no field over 12)
    takes the reading the other date columns decided by their values: those of its own
    file when they agree, else those of the centre's files when they agree."""
    decided = [(p, c, _order(c)) for p in profiles for c in p.columns if _order(c)]
    out = []
    for profile in profiles:
        columns = []
        for column in profile.columns:
            if ambiguous_partner(column.date_format, column.date_formats):
                same_file = [d for d in decided if d[0] is profile]
                column = _lent_order(column, same_file) or _lent_order(column, decided) or column
            columns.append(column)
        out.append(replace(profile, columns=columns))
    return out


def _order(column: ColumnProfile) -> str | None:
    """'day' or 'month' when the values decided it (only one reading fits them all)."""
    fmt = column.date_format
    if fmt is None or ambiguous_partner(fmt, column.date_formats):
        return None
    if fmt in AMBIGUOUS_DATES:
        return "day"
    return "month" if fmt in AMBIGUOUS_DATES.values() else None


def _lent_order(
    column: ColumnProfile, decided: list[tuple[FileProfile, ColumnProfile, str | None]]
) -> ColumnProfile | None:
    """The column with the one reading the decided columns agree on first, and its source."""
    orders = {order for _, _, order in decided}
    if len(orders) != 1:
        return None
    order = orders.pop()
    source_file, source, _ = decided[0]
    formats = list(column.date_formats)
    partner = ambiguous_partner(formats[0], column.date_formats)
    if partner is None:
        return None
    first = formats[0] if (formats[0] in AMBIGUOUS_DATES) == (order == "day") else partner
    formats.remove(first)
    evidence = f"{source.name!r} in {source_file.label}"
    return replace(column, date_formats=(first, *formats), date_evidence=evidence)

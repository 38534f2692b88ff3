"""Raw export bytes -> one all-text frame, or the whole file rejected with the reason.

Everything is read as text first, so that a value that cannot be cast is reported later
(file, row, column, value) instead of silently becoming null. A CSV (any of the mapping's
encodings and line endings), one sheet of a workbook (calamine) or a parquet file; then
the one identifier policy (``staging.identifiers``): a direct identifier column rejects the
file, named by position, and by its header cell only when the header is a header.

Reading is bounded by what ``staging.limits`` measured first; polars reads a UTF-8 file's
bytes as they are (checked, not copied), a file in another encoding once re-encoded.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from pathlib import Path
from typing import Literal

import polars as pl

from cohortflow.errors import FileRejected
from transforms.staging.headers import column_label, header_looks_like_data, shown
from transforms.staging.identifiers import find_identifier_columns
from transforms.staging.mapping import CsvFormat, ExportFormat, XlsxFormat


def read_text_table(
    content: bytes,
    fmt: ExportFormat,
    path: Path,
    *,
    exempt: frozenset[str] = frozenset(),
    local_ids: frozenset[str] = frozenset(),
) -> pl.DataFrame:
    """Parse an export as all-text columns, or reject the whole file with the reason.

    ``exempt``: identifier columns the centre's mapping reads only to derive a canonical
    value in staging (a birth date for the age), never stored: not a reason to reject.
    ``local_ids``: the columns the mapping reads the patient's local id from, already
    handled as an identifier (pseudonymised, never stored): their values may look like
    one (a 10-digit hospital number starting with 0 is shaped like a French phone number),
    their names may not.
    """
    raw = parse_text_table(content, fmt, path)
    _reject_identifiers(raw, path, exempt, local_ids)
    return raw


def parse_text_table(content: bytes, fmt: ExportFormat, path: Path) -> pl.DataFrame:
    """Parse an export as all-text columns, before the identifier policy: for the profiler,
    which flags identifier columns (never showing their values) instead of rejecting."""
    if not content or content.isspace():  # (no stripped copy of a large file)
        raise FileRejected(str(path), "empty file", "the file has no header and no rows")
    if isinstance(fmt, CsvFormat):
        return _read_csv_text(content, fmt, path)
    if isinstance(fmt, XlsxFormat):
        return _read_xlsx_text(content, fmt, path)
    return _read_parquet_text(content, path)


def _reject_identifiers(
    raw: pl.DataFrame, path: Path, exempt: frozenset[str], local_ids: frozenset[str]
) -> None:
    """A direct identifier column rejects the whole file, named by position (and by header
    cell only when the header is a header: in a file without one, the cells are data)."""
    identifiers = [
        c
        for c in find_identifier_columns(raw)
        if c.name not in exempt and not (c.name in local_ids and c.by == "its values")
    ]
    if not identifiers:
        return
    suspect = header_looks_like_data(raw.columns)
    found = "; ".join(
        f"{column_label(c.position, c.name, suspect)} looks like {c.kind} (by {c.by})"
        for c in identifiers[:10]
    ) + ("; ..." if len(identifiers) > 10 else "")
    note = " (the first row looks like data: is the header row missing?)" if suspect else ""
    raise FileRejected(
        str(path),
        "direct identifier",
        f"{found}{note}; such data must not leave the centre: ask for an export without it",
    )


def _read_csv_text(content: bytes, fmt: CsvFormat, path: Path) -> pl.DataFrame:
    if fmt.encoding == "utf-16":  # two bytes a character: NUL bytes are its ASCII half
        content = _decode(content, fmt, path).encode("utf-8")
        fmt = fmt.model_copy(update={"encoding": "utf-8"})
    if b"\x00" in content:  # zero-filled blocks of a broken copy, or another kind of file
        line = content[: content.index(b"\x00")].count(b"\n") + 1
        utf16 = " (set encoding: utf-16 in the mapping)" if _looks_like(content) == UTF16 else ""
        raise FileRejected(
            str(path),
            "not a text file",
            f"{_binary_kind(content)} (NUL byte at line {line}){utf16}",
        )
    utf8 = _as_utf8(content, fmt, path)
    if not utf8 or utf8.isspace():
        raise FileRejected(str(path), "empty file", "the file has no header and no rows")
    try:
        return pl.read_csv(
            io.BytesIO(utf8),
            separator=fmt.delimiter,
            quote_char=fmt.quote_char,
            infer_schema=False,
            empty_string_is_null=False,
            skip_rows=fmt.skip_rows,  # a report's title lines above the header
        )
    except BaseException as exc:
        if not _reader_failure(exc):
            raise
        # polars quotes the offending text between backticks: row data stays out of logs
        detail = re.sub(r"`[^`]*(`|$)", "`...`", _first_line(exc))[:200]
        where = _locate_problem(utf8.decode("utf-8", errors="replace"), fmt)
        raise FileRejected(
            str(path), "unreadable CSV", f"{where} ({detail})" if where else detail
        ) from exc


def _reader_failure(exc: BaseException) -> bool:
    """Whether a reader failed on the file's content: a Python error, or a Rust panic.

    pyo3 raises a panic of polars or calamine as ``PanicException``, a BaseException that
    ``except Exception`` misses; damaged files do trigger them.
    """
    return isinstance(exc, Exception) or type(exc).__name__ == "PanicException"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


_UTF8_BOM = b"\xef\xbb\xbf"
_CHECK_BLOCK = 8 << 20


def _as_utf8(content: bytes, fmt: CsvFormat, path: Path) -> bytes:
    """The file as UTF-8 with LF line ends, as polars reads it: the bytes themselves when
    they already are (checked in blocks, no copy of the file), else decoded and re-encoded.
    """
    plain = not content.startswith(_UTF8_BOM) and b"\n" in content
    if fmt.encoding.startswith("utf-8") and plain:
        decoder = codecs.getincrementaldecoder("utf-8")()
        view = memoryview(content)
        try:
            for offset in range(0, len(content), _CHECK_BLOCK):
                decoder.decode(view[offset : offset + _CHECK_BLOCK])
            decoder.decode(b"", final=True)
            return content
        except UnicodeDecodeError:
            pass  # _decode names the byte and line
    text = _decode(content, fmt, path)
    if "\n" not in text:  # classic Mac line endings (CR only), as old spreadsheets save
        text = text.replace("\r", "\n")
    return text.encode("utf-8")


def _decode(content: bytes, fmt: CsvFormat, path: Path) -> str:
    """Bytes -> text in the mapping's encoding; a UTF-8 byte-order mark is dropped."""
    if content.startswith(_UTF8_BOM):
        if not fmt.encoding.startswith("utf-8"):
            raise FileRejected(
                str(path),
                "encoding",
                f"the file starts with a UTF-8 byte-order mark but the mapping says "
                f"{fmt.encoding}: ask for a {fmt.encoding} export, or set encoding: utf-8-sig",
            )
        content = content[len(_UTF8_BOM) :]
    try:
        return content.decode(fmt.encoding)
    except UnicodeDecodeError as exc:
        line = content[: exc.start].count(b"\n") + 1
        raise FileRejected(
            str(path),
            "encoding",
            f"not valid {fmt.encoding} at byte {exc.start} (line {line}): "
            "check the encoding in the centre's mapping",
        ) from exc


def _locate_problem(text: str, fmt: CsvFormat) -> str | None:
    """Where a CSV that cannot be parsed goes wrong, for a person (on the error path only)."""
    quoting: Literal[0, 3] = csv.QUOTE_MINIMAL if fmt.quote_char else csv.QUOTE_NONE
    reader = csv.reader(
        io.StringIO(text), delimiter=fmt.delimiter, quotechar=fmt.quote_char, quoting=quoting
    )
    try:
        width = len(next(reader))
        for n, row in enumerate(reader, 1):
            where = f"data row {n} (line {reader.line_num})"
            if len(row) > width:
                return f"{where} has {len(row)} fields, the header {width}"
            if fmt.quote_char and any(fmt.quote_char in v for v in row):
                return f"{where} has a stray quote ({fmt.quote_char}) inside a value"
            if any("\n" in v and fmt.delimiter in v for v in row):
                return f"{where} opens a quote that does not close where it should"
    except (csv.Error, StopIteration):
        return None
    return None


_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # Office's old container, encrypted workbooks
UTF16 = "UTF-16 text"
_MAGIC = {
    b"PK\x03\x04": "a ZIP archive (an XLSX workbook?)",
    _OLE2_MAGIC: "an OLE2 container (a password-protected workbook, or an old .xls)",
    b"PAR1": "a parquet file",
    b"%PDF": "a PDF document",
    b"\xff\xfe": UTF16,
    b"\xfe\xff": UTF16,
}


def _looks_like(content: bytes) -> str | None:
    """What a file is, from its first bytes, when they say it."""
    return next((kind for magic, kind in _MAGIC.items() if content.startswith(magic)), None)


def _binary_kind(content: bytes) -> str:
    return f"this looks like {_looks_like(content) or 'binary data'}, not a CSV export"


def _read_xlsx_text(content: bytes, fmt: XlsxFormat, path: Path) -> pl.DataFrame:
    """One sheet as text: Excel dates come as 'YYYY-MM-DD 00:00:00', numbers as digits."""
    try:
        return pl.read_excel(
            io.BytesIO(content),
            sheet_name=fmt.sheet,
            engine="calamine",
            infer_schema_length=0,
            read_options={"header_row": fmt.skip_rows} if fmt.skip_rows else None,
        )
    except BaseException as exc:  # fastexcel raises its own untyped errors, and panics
        if not _reader_failure(exc):
            raise
        raise _workbook_rejection(content, fmt, path, _first_line(exc)) from exc


def _workbook_rejection(content: bytes, fmt: XlsxFormat, path: Path, message: str):
    """Why a workbook could not be read, in words for a person."""
    if content.startswith(_OLE2_MAGIC):
        return FileRejected(
            str(path),
            "encrypted or legacy workbook",
            "an OLE2 container, not an .xlsx: a password-protected workbook or an old .xls; "
            "ask for an .xlsx export without a password",
        )
    if not content.startswith(b"PK\x03\x04"):
        kind = _looks_like(content)
        detail = "not an .xlsx workbook (a ZIP archive)" + (
            f": this looks like {kind}" if kind else ""
        )
        return FileRejected(str(path), "unreadable XLSX", detail)
    if fmt.sheet in message and "not found" in message:
        return FileRejected(str(path), "missing sheet", message[:300])
    if "detect file format" in message:  # calamine's words for a damaged ZIP
        message = "the workbook is truncated or damaged (not a readable ZIP archive)"
    return FileRejected(str(path), "unreadable XLSX", message[:300])


def _read_parquet_text(content: bytes, path: Path) -> pl.DataFrame:
    try:
        frame = pl.read_parquet(io.BytesIO(content))
    except BaseException as exc:  # arrow and polars raise several error types, and panics
        if not _reader_failure(exc):
            raise
        raise FileRejected(str(path), "unreadable parquet", _first_line(exc)[:300]) from exc
    return pl.DataFrame([_as_text(frame[c], path) for c in frame.columns])


def _as_text(column: pl.Series, path: Path) -> pl.Series:
    """A parquet column as text (nested values as their Python text), or the file rejected
    naming the column whose values cannot be (e.g. a date beyond year 9999)."""
    try:
        if column.dtype.is_nested():
            values = [None if v is None else str(v) for v in column.to_list()]
            return pl.Series(column.name, values, dtype=pl.String)
        return column.cast(pl.String)
    except BaseException as exc:
        if not _reader_failure(exc):
            raise
        detail = f"column {shown(column.name)}: {_first_line(exc)[:200]}"
        raise FileRejected(str(path), "unreadable parquet", detail) from exc

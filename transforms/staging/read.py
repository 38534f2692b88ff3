"""Raw centre export -> staged canonical frame (renamed, reshaped, cast), with lineage.

Everything is read as text first, so that a value that cannot be cast is reported
(file, row, column, value) instead of silently becoming null. Source column names stop
here: the staged frame has canonical names only, plus lineage columns:

* ``_record``: position of the canonical record in this file (0-based);
* ``_source_row``: 1-based data row of the file (the header is not counted; blank lines,
  which hold no record, are counted but not read);
* ``_src_<column>``: for wide layouts, the source column each value came from.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import polars as pl

from cohortflow.errors import FileRejected
from schemas.forms import Form
from transforms.staging.identifiers import direct_identifier_columns
from transforms.staging.mapping import (
    EXCEL_DATE,
    UNIT_FACTORS,
    CsvFormat,
    ExportFormat,
    FormMapping,
    XlsxFormat,
)

FAILURE_SCHEMA = pl.Schema(
    {
        "_record": pl.Int64,
        "column": pl.String,
        "rule": pl.String,
        "value": pl.String,
        "message": pl.String,
    }
)


@dataclass
class StagedFile:
    """One export file in canonical shape, and the values that could not be cast."""

    frame: pl.DataFrame
    cast_failures: pl.DataFrame
    source_columns: dict[str, str]  # canonical -> source column (long layout)

    @property
    def rows_read(self) -> int:
        return self.frame.height


def read_text_table(content: bytes, fmt: ExportFormat, path: Path) -> pl.DataFrame:
    """Parse an export as all-text columns, or reject the whole file with the reason."""
    if not content.strip():
        raise FileRejected(str(path), "empty file", "the file has no header and no rows")
    if isinstance(fmt, CsvFormat):
        raw = _read_csv_text(content, fmt, path)
    elif isinstance(fmt, XlsxFormat):
        raw = _read_xlsx_text(content, fmt, path)
    else:
        raw = _read_parquet_text(content, path)
    identifiers = direct_identifier_columns(raw)
    if identifiers:
        found = ", ".join(f"{c!r} looks like {kind}" for c, kind in identifiers.items())
        raise FileRejected(
            str(path),
            "direct identifier",
            f"{found}; such data must not leave the centre: ask for an export without it",
        )
    return raw


def _read_csv_text(content: bytes, fmt: CsvFormat, path: Path) -> pl.DataFrame:
    if b"\x00" in content:  # zero-filled blocks of a broken copy, or another kind of file
        line = content[: content.index(b"\x00")].count(b"\n") + 1
        raise FileRejected(
            str(path), "not a text file", f"{_binary_kind(content)} (NUL byte at line {line})"
        )
    text = _decode(content, fmt, path)
    if not text.strip():
        raise FileRejected(str(path), "empty file", "the file has no header and no rows")
    if "\n" not in text:  # classic Mac line endings (CR only), as old spreadsheets save
        text = text.replace("\r", "\n")
    try:
        return pl.read_csv(
            io.BytesIO(text.encode("utf-8")),
            separator=fmt.delimiter,
            quote_char=fmt.quote_char,
            infer_schema=False,
            empty_string_is_null=False,
        )
    except BaseException as exc:
        if not _reader_failure(exc):
            raise
        # polars quotes the offending text between backticks: row data stays out of logs
        detail = re.sub(r"`[^`]*(`|$)", "`...`", _first_line(exc))[:200]
        where = _locate_problem(text, fmt)
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
_MAGIC = {
    b"PK\x03\x04": "a ZIP archive (an XLSX workbook?)",
    _OLE2_MAGIC: "an OLE2 container (a password-protected workbook, or an old .xls)",
    b"PAR1": "a parquet file",
    b"%PDF": "a PDF document",
    b"\xff\xfe": "UTF-16 text",
    b"\xfe\xff": "UTF-16 text",
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
            io.BytesIO(content), sheet_name=fmt.sheet, engine="calamine", infer_schema_length=0
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
        detail = f"column {_shown(column.name)}: {_first_line(exc)[:200]}"
        raise FileRejected(str(path), "unreadable parquet", detail) from exc


def stage_file(content: bytes, path: Path, mapping: FormMapping, form: Form) -> StagedFile:
    """Read one export file and bring it to the canonical shape of ``form``."""
    raw = read_text_table(content, mapping.format, path)
    _reject_duplicated_columns(raw, mapping, path)
    raw = _without_blank_rows(
        raw.with_row_index("_source_row", offset=1).with_columns(
            pl.col("_source_row").cast(pl.Int64)
        )
    )
    if mapping.layout == "long":
        _require_columns(raw, mapping.columns.values(), path, mapping.format)
        text = raw.select("_source_row", *[pl.col(s).alias(c) for c, s in mapping.columns.items()])
    else:
        text = _melt_wide(raw, mapping, path)
    text = (
        _normalise_text(text, mapping)
        .with_row_index("_record")
        .with_columns(pl.col("_record").cast(pl.Int64))
    )
    frame, failures = _cast(text, mapping, form)
    return StagedFile(frame, failures, dict(mapping.columns) | dict(mapping.id_columns))


def _without_blank_rows(raw: pl.DataFrame) -> pl.DataFrame:
    """Lines with no value at all (blank lines, ';;;;' rows of a spreadsheet) are no records.

    They are dropped after numbering, so that source rows stay those of the file.
    """
    values = raw.drop("_source_row")  # by frame, not pl.col(name): a header may be '*'
    if not values.width:
        return raw
    blank = values.select(
        pl.all_horizontal(pl.all().str.strip_chars().replace("", None).is_null())
    ).to_series()
    return raw.filter(~blank)


def _shown(name: str, limit: int = 60) -> str:
    """A column name as quoted in a message, cut short if it is absurdly long."""
    return repr(name if len(name) <= limit else name[:limit] + "...")


def _reject_duplicated_columns(raw: pl.DataFrame, mapping: FormMapping, path: Path) -> None:
    """A column read twice in the header is ambiguous: which copy holds the data?

    Readers rename the second copy (polars CSV: ``x_duplicated_0``, calamine: ``x_1``).
    """
    read = set(mapping.columns.values()) | set(mapping.id_columns.values())
    patterns = list(mapping.wide_columns.values())
    doubled = set()
    for column in raw.columns:
        match = re.fullmatch(r"(.+?)_(?:duplicated_)?\d+", column)
        base = match and match.group(1)
        if base and base in raw.columns:
            if base in read or any(re.fullmatch(p, base) for p in patterns):
                doubled.add(base)
    if doubled:
        names = ", ".join(_shown(c) for c in sorted(doubled))
        raise FileRejected(
            str(path),
            "duplicate column names",
            f"{names} appear(s) more than once in the header: which copy holds the data is "
            "ambiguous; ask for an export with each column once",
        )


def _require_columns(raw: pl.DataFrame, needed, path: Path, fmt: ExportFormat) -> None:
    missing = [c for c in needed if c not in raw.columns]
    if missing:
        found = [c for c in raw.columns if c != "_source_row"]
        shown = ", ".join(_shown(c) for c in found[:20]) + (", ..." if len(found) > 20 else "")
        raise FileRejected(
            str(path),
            "missing required columns",
            f"{', '.join(_shown(c) for c in missing)} not in the header (found: {shown})"
            + _header_hint(found, fmt),
        )


def _header_hint(found: list[str], fmt: ExportFormat) -> str:
    """A likely cause of a header that does not match the mapping: delimiter or encoding."""
    if not isinstance(fmt, CsvFormat):
        return ""
    if len(found) == 1:
        other = next((d for d in ",;\t|" if d != fmt.delimiter and d in found[0]), None)
        if other:
            return f"; the header is one column: is the delimiter {other!r}, not {fmt.delimiter!r}?"
    if fmt.encoding in ("latin-1", "cp1252") and any(re.search("Ã|Â", c) for c in found):
        return f"; the header looks UTF-8 encoded but is read as {fmt.encoding}: check encoding"
    return ""


def _melt_wide(raw: pl.DataFrame, mapping: FormMapping, path: Path) -> pl.DataFrame:
    """Wide (one column per month) -> one row per month; empty months give no row."""
    _require_columns(raw, mapping.id_columns.values(), path, mapping.format)
    ids = ["_source_row", *mapping.id_columns.values()]
    per_measure = []
    for name, pattern in mapping.wide_columns.items():
        measure_cols = [c for c in raw.columns if re.fullmatch(pattern, c)]
        if not measure_cols:
            raise FileRejected(
                str(path),
                "missing required columns",
                f"no column matches {pattern!r}" + _header_hint(raw.columns[1:], mapping.format),
            )
        long = raw.unpivot(
            on=measure_cols, index=ids, variable_name=f"_src_{name}", value_name=name
        )
        per_measure.append(
            long.with_columns(month=pl.col(f"_src_{name}").str.extract(f"^(?:{pattern})$", 1))
        )
    melted = per_measure[0]
    for other in per_measure[1:]:
        melted = melted.join(other, on=[*ids, "month"], how="full", coalesce=True)
    measures = list(mapping.wide_columns)
    markers = mapping.missing_values
    has_value = pl.any_horizontal(
        [pl.col(m).is_not_null() & ~pl.col(m).str.strip_chars().is_in(markers) for m in measures]
    )
    renames = {s: c for c, s in mapping.id_columns.items()}
    return (
        melted.filter(has_value)
        .rename(renames)
        .with_columns(pl.col("month").cast(pl.Int64, strict=False))
        .sort("_source_row", "month")
    )


def _normalise_text(text: pl.DataFrame, mapping: FormMapping) -> pl.DataFrame:
    """Strip blanks and turn missing-value markers into nulls (codes are translated later)."""
    value_cols = [c for c in text.columns if not c.startswith("_") and text[c].dtype == pl.String]
    exprs = []
    for c in value_cols:
        v = pl.col(c).str.strip_chars()
        exprs.append(pl.when(v.is_in(mapping.missing_values)).then(None).otherwise(v).alias(c))
    return text.with_columns(exprs)


SHOWN_CHARACTERS = 200  # of a bad value kept in quarantine (a 10 MB field is not copied)


def shortened(value: pl.Expr) -> pl.Expr:
    """A text value cut to what a person needs to see, saying how long it was."""
    length = value.str.len_chars()
    cut = pl.format("{}... ({} characters)", value.str.slice(0, SHOWN_CHARACTERS), length)
    return pl.when(length > SHOWN_CHARACTERS).then(cut).otherwise(value)


_EXCEL_EPOCH = dt.date(1899, 12, 30)


def _cast_expr(name: str, dtype: pl.DataType, mapping: FormMapping) -> pl.Expr:
    v = pl.col(name)
    if name in mapping.codes:
        v = v.replace_strict(mapping.codes[name], default=None)
    if dtype == pl.Date:
        fmt = mapping.date_formats.get(name)
        if fmt == EXCEL_DATE:
            days = v.cast(pl.Float64, strict=False).floor().cast(pl.Int64)
            return pl.lit(_EXCEL_EPOCH) + pl.duration(days=days)
        if fmt is None:  # ISO dates, also as Excel renders them with a midnight time
            v = v.str.replace(r"[ T]00:00:00(\.0+)?$", "")
        return v.str.strptime(pl.Date, fmt or "%Y-%m-%d", strict=False)
    if dtype.is_float():
        if mapping.format.decimal == ",":
            v = v.str.replace(",", ".", literal=True)
        v = v.cast(dtype, strict=False)
        if name in mapping.units:
            v = v * UNIT_FACTORS[name][mapping.units[name]]
        return v
    if dtype.is_integer():  # '8' and '8.0' (a spreadsheet's float) are 8; '8.5' is no integer
        number = v.cast(pl.Float64, strict=False)
        return pl.when(number == number.floor()).then(number).cast(dtype, strict=False)
    return v


_TYPE_NAMES: dict[pl.DataType | type[pl.DataType], str] = {
    pl.Date: "a date",
    pl.Int64: "an integer",
    pl.Float64: "a number",
}


def _cast_rule(column: str, dtype: pl.DataType, mapping: FormMapping) -> tuple[str, str]:
    """The rule a value broke when it could not be cast, and how to say it."""
    if column in mapping.codes:
        return "unknown code", f"is not one of the codes configured for {column}"
    expected = _TYPE_NAMES.get(dtype, str(dtype))
    if dtype == pl.Date:
        expected += f" ({mapping.date_formats.get(column, '%Y-%m-%d')})"
    return f"type: {expected}", f"is not {expected}"


def _cast(text: pl.DataFrame, mapping: FormMapping, form: Form):
    """Translate codes and cast to the form's dtypes; a text that gives null is a failure."""
    # One chunk per column: polars 2.1 panics ("i < self.len()" in binview) when a
    # multi-chunk string frame is filtered by a mask computed from another frame (seen on
    # a 3,574-row REDCap export of a 20,000-patient simulation).
    text = text.rechunk()
    columns = form.columns()
    present = [c for c in columns if c in text.columns]
    converted = [c for c in present if columns[c] != pl.String or c in mapping.codes]
    # the cast values beside the texts (canonical names never hold ':'), so that finding
    # the failures is one pass over the frame rather than a few per column
    both = text.with_columns(
        _cast_expr(c, columns[c], mapping).alias(f"cast:{c}") for c in converted
    )
    failed = {c: pl.col(c).is_not_null() & pl.col(f"cast:{c}").is_null() for c in converted}
    any_failed = both.select(f.any().alias(c) for c, f in failed.items()).row(0) if failed else ()
    failures = []
    for c, has_failures in zip(converted, any_failed, strict=True):
        if has_failures:
            rule, explanation = _cast_rule(c, columns[c], mapping)
            failures.append(
                both.filter(failed[c]).select(
                    "_record",
                    pl.lit(c).alias("column"),
                    pl.lit(rule).alias("rule"),
                    shortened(pl.col(c)).alias("value"),
                    pl.format("'{}' {}", shortened(pl.col(c)), pl.lit(explanation)).alias(
                        "message"
                    ),
                )
            )
    lineage = [c for c in text.columns if c.startswith("_")]

    def canonical(c: str) -> pl.Expr:
        if c in failed:
            return pl.col(f"cast:{c}").alias(c)
        return pl.col(c) if c in present else pl.lit(None, dtype=columns[c]).alias(c)

    frame = both.select(*lineage, *map(canonical, columns))
    failure_frame = (pl.concat(failures) if failures else pl.DataFrame(schema=FAILURE_SCHEMA)).cast(
        FAILURE_SCHEMA
    )
    return frame, failure_frame

"""Raw centre export -> staged canonical frame (renamed, reshaped, cast), with lineage.

Everything is read as text first, so that a value that cannot be cast is reported
(file, row, column, value) instead of silently becoming null. Source column names stop
here: the staged frame has canonical names only, plus lineage columns:

* ``_record``: position of the canonical record in this file (0-based);
* ``_source_row``: 1-based data row of the file (the header is not counted);
* ``_src_<column>``: for wide layouts, the source column each value came from.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from cohortflow.errors import FileRejected
from schemas.forms import Form
from transforms.identifiers import direct_identifier_columns
from transforms.mapping import (
    EXCEL_DATE,
    UNIT_FACTORS,
    CsvFormat,
    ExportFormat,
    FormMapping,
    XlsxFormat,
)

FAILURE_SCHEMA = {
    "_record": pl.Int64,
    "column": pl.String,
    "rule": pl.String,
    "value": pl.String,
    "message": pl.String,
}


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
    try:
        text = content.decode(fmt.encoding)
    except UnicodeDecodeError as exc:
        raise FileRejected(
            str(path), "encoding", f"not valid {fmt.encoding} at byte {exc.start}"
        ) from exc
    try:
        return pl.read_csv(
            io.BytesIO(text.encode("utf-8")),
            separator=fmt.delimiter,
            quote_char=fmt.quote_char,
            infer_schema=False,
            empty_string_is_null=False,
        )
    except pl.exceptions.PolarsError as exc:
        raise FileRejected(str(path), "unreadable CSV", str(exc).splitlines()[0]) from exc


def _read_xlsx_text(content: bytes, fmt: XlsxFormat, path: Path) -> pl.DataFrame:
    """One sheet as text: Excel dates come as 'YYYY-MM-DD 00:00:00', numbers as digits."""
    try:
        return pl.read_excel(
            io.BytesIO(content), sheet_name=fmt.sheet, engine="calamine", infer_schema_length=0
        )
    except Exception as exc:  # noqa: BLE001 - fastexcel raises its own untyped errors
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        rule = "missing sheet" if fmt.sheet in message and "not found" in message else None
        raise FileRejected(str(path), rule or "unreadable XLSX", message[:300]) from exc


def _read_parquet_text(content: bytes, path: Path) -> pl.DataFrame:
    try:
        frame = pl.read_parquet(io.BytesIO(content))
    except Exception as exc:  # noqa: BLE001 - arrow and polars raise several error types
        raise FileRejected(str(path), "unreadable parquet", str(exc).splitlines()[0]) from exc
    return frame.with_columns(pl.all().cast(pl.String))


def stage_file(content: bytes, path: Path, mapping: FormMapping, form: Form) -> StagedFile:
    """Read one export file and bring it to the canonical shape of ``form``."""
    raw = read_text_table(content, mapping.format, path)
    raw = raw.with_row_index("_source_row", offset=1).with_columns(
        pl.col("_source_row").cast(pl.Int64)
    )
    if mapping.layout == "long":
        _require_columns(raw, mapping.columns.values(), path)
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


def _require_columns(raw: pl.DataFrame, needed, path: Path) -> None:
    missing = [c for c in needed if c not in raw.columns]
    if missing:
        raise FileRejected(
            str(path),
            "missing required columns",
            f"{missing} not in the header (found: {raw.columns[:20]})",
        )


def _melt_wide(raw: pl.DataFrame, mapping: FormMapping, path: Path) -> pl.DataFrame:
    """Wide (one column per month) -> one row per month; empty months give no row."""
    _require_columns(raw, mapping.id_columns.values(), path)
    ids = ["_source_row", *mapping.id_columns.values()]
    per_measure = []
    for name, pattern in mapping.wide_columns.items():
        measure_cols = [c for c in raw.columns if re.fullmatch(pattern, c)]
        if not measure_cols:
            raise FileRejected(
                str(path), "missing required columns", f"no column matches {pattern!r}"
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


_TYPE_NAMES = {pl.Date: "a date", pl.Int64: "an integer", pl.Float64: "a number"}


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
    absent = [pl.lit(None, dtype=columns[c]).alias(c) for c in columns if c not in text.columns]
    converted = [c for c in present if columns[c] != pl.String or c in mapping.codes]
    cast = text.with_columns([_cast_expr(c, columns[c], mapping).alias(c) for c in converted])
    cast = cast.with_columns(absent)
    failures = []
    for c in converted:
        bad = text[c].is_not_null() & cast[c].is_null()
        if bad.any():
            rule, explanation = _cast_rule(c, columns[c], mapping)
            failures.append(
                text.filter(bad).select(
                    "_record",
                    pl.lit(c).alias("column"),
                    pl.lit(rule).alias("rule"),
                    pl.col(c).alias("value"),
                    pl.format("'{}' {}", pl.col(c), pl.lit(explanation)).alias("message"),
                )
            )
    lineage = [c for c in text.columns if c.startswith("_")]
    frame = cast.select(*lineage, *columns)
    failure_frame = (pl.concat(failures) if failures else pl.DataFrame(schema=FAILURE_SCHEMA)).cast(
        FAILURE_SCHEMA
    )
    return frame, failure_frame

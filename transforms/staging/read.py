"""Raw centre export -> staged canonical frame (renamed, reshaped, cast), with lineage.

The file is read as text first (``staging.raw``), so that a value that cannot be cast is
reported (file, row, column, value) instead of silently becoming null. Source column names stop
here: the staged frame has canonical names only, plus lineage columns:

* ``_record``: position of the canonical record in this file (0-based);
* ``_source_row``: 1-based data row of the file (the header is not counted; blank lines,
  which hold no record, are counted but not read);
* ``_src_<column>``: for wide layouts, the source column each value came from.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from cohortflow.errors import FileRejected, did_you_mean
from schemas.forms import Form
from transforms.staging.dates import parse_dates
from transforms.staging.derive import aux, rule_sources, text_rules, value_rules
from transforms.staging.headers import columns_by_position, header_looks_like_data, shown
from transforms.staging.mapping import (
    UNIT_FACTORS,
    CsvFormat,
    ExportFormat,
    FormMapping,
)
from transforms.staging.raw import read_text_table
from transforms.staging.rules import match_key

__all__ = ["FAILURE_SCHEMA", "StagedFile", "read_text_table", "shortened", "stage_file"]

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


def stage_file(
    content: bytes,
    path: Path,
    mapping: FormMapping,
    form: Form,
    *,
    exempt: frozenset[str] = frozenset(),
) -> StagedFile:
    """Read one export file and bring it to the canonical shape of ``form``.

    ``exempt``: birth-date columns the centre's mappings of this file read to derive an age
    (``FormMapping.birth_date_columns``); any other identifier column rejects the file.
    """
    _reject_id_read_twice(mapping, path)
    exempt = exempt | mapping.birth_date_columns()
    raw = read_text_table(
        content, mapping.format, path, exempt=exempt, local_ids=mapping.local_id_columns()
    )
    _reject_duplicated_columns(raw, mapping, path)
    raw = _without_blank_rows(
        raw.with_row_index("_source_row", offset=1).with_columns(
            pl.col("_source_row").cast(pl.Int64)
        )
    )
    rules = rule_sources(mapping)
    if mapping.layout == "long":
        _require_columns(raw, [*mapping.columns.values(), *rules], path, mapping.format)
        text = raw.select(
            "_source_row",
            *[pl.col(s).alias(c) for c, s in mapping.columns.items()],
            *[pl.col(s).alias(aux(s)) for s in rules],
        )
    else:
        text = _melt_wide(raw, mapping, path, rules)
    text = _normalise_text(text_rules(text, mapping), mapping)
    if mapping.empty_rows == "skip":
        text = _with_values_only(text, mapping, form)
    text = text.with_row_index("_record").with_columns(pl.col("_record").cast(pl.Int64))
    frame, failures = _cast(text, mapping, form)
    frame, rule_failures = value_rules(frame, mapping)
    if any(f.height for f in rule_failures):
        failures = pl.concat([failures, *rule_failures], how="vertical_relaxed").cast(
            FAILURE_SCHEMA
        )
    return StagedFile(frame, failures, _source_names(mapping))


def _source_names(mapping: FormMapping) -> dict[str, str]:
    """Canonical column -> what a person finds in the file for it (quarantine's column)."""
    names = dict(mapping.columns) | dict(mapping.id_columns)
    for name, unit in mapping.row_units().items():
        for target, _ in unit.known_units(name).values():
            names.setdefault(target, f"{names[name]} (unit in {unit.column})")
    names |= {c: "(constant in the mapping)" for c in mapping.constants}
    for name, rule in mapping.derived.items():
        names[name] = f"(derived: {rule.from_})"
    return names


def _without_blank_rows(raw: pl.DataFrame) -> pl.DataFrame:
    """Lines with no value at all (blank lines, ';;;;' rows of a spreadsheet) are no records.

    They are dropped after numbering, so that source rows stay those of the file.
    """
    values = raw.drop("_source_row")  # by frame, not pl.col(name): a header may be '*'
    if not values.width:
        return raw
    empty = pl.all().str.strip_chars().replace("", None).is_null()
    blank = pl.repeat(True, values.height, eager=True)
    series = values.get_columns()
    for start in range(0, len(series), BLANK_CHECK_COLUMNS):  # a very wide file in parts:
        part = pl.DataFrame(series[start : start + BLANK_CHECK_COLUMNS])  # one query over
        blank &= part.select(pl.all_horizontal(empty)).to_series()  # all costs more per column
    return raw.filter(~blank)


BLANK_CHECK_COLUMNS = 256


def _reject_id_read_twice(mapping: FormMapping, path: Path) -> None:
    """The local id column mapped to another canonical column too would carry raw ids into
    quarantine values and messages (e.g. ``pain_diagnosis: record_id``): refused."""
    sources = {**mapping.columns, **mapping.id_columns}
    id_source = sources.get("patient_id")
    others = sorted(c for c, s in sources.items() if s == id_source and c != "patient_id")
    if id_source is not None and others:
        raise FileRejected(
            str(path),
            "local id read twice",
            f"the mapping reads the local patient id column {shown(id_source)} also as "
            f"{', '.join(others)}: its raw ids would be stored as data; fix the centre's "
            "mapping file",
        )


def _reject_duplicated_columns(raw: pl.DataFrame, mapping: FormMapping, path: Path) -> None:
    """A column read twice in the header is ambiguous: which copy holds the data?

    Readers rename the second copy (polars CSV: ``x_duplicated_0``, calamine: ``x_1``).
    """
    read = set(mapping.columns.values()) | set(mapping.id_columns.values())
    patterns = list(mapping.wide_columns.values())
    header = set(raw.columns)  # a set: a 100,000-column header is looked up in linear time
    doubled = set()
    for column in raw.columns:
        match = re.fullmatch(r"(.+?)_(?:duplicated_)?\d+", column)
        base = match and match.group(1)
        if base and base in header:
            if base in read or any(re.fullmatch(p, base) for p in patterns):
                doubled.add(base)
    if doubled:
        names = ", ".join(shown(c) for c in sorted(doubled))
        raise FileRejected(
            str(path),
            "duplicate column names",
            f"{names} appear(s) more than once in the header: which copy holds the data is "
            "ambiguous; ask for an export with each column once",
        )


def _require_columns(raw: pl.DataFrame, needed, path: Path, fmt: ExportFormat) -> None:
    header = set(raw.columns)
    missing = [c for c in needed if c not in header]
    if missing:
        found = [c for c in raw.columns if c != "_source_row"]
        absent = ", ".join(shown(c) for c in missing)
        if header_looks_like_data(found):  # never quote cells that are a patient's data
            raise FileRejected(
                str(path),
                "missing required columns",
                f"{absent} not in the header: the first row looks like data, not a header "
                f"({columns_by_position(raw.drop('_source_row'))}): is the header row "
                "missing?" + _header_hint(found, fmt),
            )
        listed = ", ".join(shown(c) for c in found[:20]) + (", ..." if len(found) > 20 else "")
        raise FileRejected(
            str(path),
            "missing required columns",
            f"{absent} not in the header (found: {listed})"
            + did_you_mean(missing[0], found)
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


def _melt_wide(
    raw: pl.DataFrame, mapping: FormMapping, path: Path, rules: list[str]
) -> pl.DataFrame:
    """Wide (one column per month) -> one row per month; empty months give no row."""
    needed = [*mapping.id_columns.values(), *rules]
    _require_columns(raw, needed, path, mapping.format)
    ids = ["_source_row", *dict.fromkeys(needed)]
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
    kept = melted.filter(has_value).with_columns(pl.col(s).alias(aux(s)) for s in rules)
    renames = {s: c for c, s in mapping.id_columns.items()}
    return (
        kept.drop(s for s in rules if s not in renames)
        .rename(renames)
        .sort("_source_row", pl.col("month").cast(pl.Int64, strict=False), "month")
    )  # the month stays text: cast like any value, through codes when the mapping has
    # some ('nrs_baseline' -> 'baseline' -> 0)


def _with_values_only(text: pl.DataFrame, mapping: FormMapping, form: Form) -> pl.DataFrame:
    """The rows holding at least one of the form's values: a row with only its ids, key and
    constants is no record of this form (``empty_rows: skip``)."""
    not_values = {"patient_id", *form.key, *mapping.constants, *mapping.derived}
    values = [c for c in text.columns if not c.startswith("_") and c not in not_values]
    if not values:
        return text
    return text.filter(pl.any_horizontal(pl.col(c).is_not_null() for c in values))


def _normalise_text(text: pl.DataFrame, mapping: FormMapping) -> pl.DataFrame:
    """Strip blanks and turn missing-value markers into nulls (codes are translated later)."""
    value_cols = [c for c in text.columns if not c.startswith("_") and text[c].dtype == pl.String]
    exprs = []
    for c in value_cols:
        v = pl.col(c).str.strip_chars()
        markers = [*mapping.missing_values, *mapping.missing_codes.get(c, [])]
        exprs.append(pl.when(v.is_in(markers)).then(None).otherwise(v).alias(c))
    return text.with_columns(exprs)


SHOWN_CHARACTERS = 200  # of a bad value kept in quarantine (a 10 MB field is not copied)


def shortened(value: pl.Expr) -> pl.Expr:
    """A text value cut to what a person needs to see, saying how long it was."""
    length = value.str.len_chars()
    cut = pl.format("{}... ({} characters)", value.str.slice(0, SHOWN_CHARACTERS), length)
    return pl.when(length > SHOWN_CHARACTERS).then(cut).otherwise(value)


def _code_table(
    values: list[str], codes: dict[str, str], dtype: pl.DataType, allowed: list | None
) -> dict[str, str]:
    """Each distinct text of a coded column -> its canonical value: its code written
    exactly, else without case, accents or repeated spaces; a text that already is a
    canonical value goes through, so that codes list only what the centre writes its own
    way (``month: {baseline: 0}``). A text left out is an unknown code. (Worked out on the
    distinct texts, a handful, not on every row.)"""
    loose = {match_key(code): value for code, value in codes.items()}
    canonical = {str(a) for a in allowed} if allowed is not None else None
    table = {}
    for value in values:
        if value in codes:
            table[value] = codes[value]
        elif match_key(value) in loose:
            table[value] = loose[match_key(value)]
        elif value in canonical if canonical is not None else _is_number(value, dtype):
            table[value] = value
    return table


def _is_number(value: str, dtype: pl.DataType) -> bool:
    return dtype.is_numeric() and re.fullmatch(r"[+-]?\d+(\.\d+)?", value) is not None


def _extracted(name: str, mapping: FormMapping) -> pl.Expr:
    """The column's text, or the part of it its ``extract`` pattern takes."""
    pattern = mapping.column_extracts().get(name)
    v = pl.col(name)
    return v if pattern is None else v.str.extract(pattern, 1)  # '3 - Jamais' -> '3'


def _cast_expr(
    name: str, dtype: pl.DataType, mapping: FormMapping, codes: dict[str, dict[str, str]]
) -> pl.Expr:
    v = _extracted(name, mapping)
    if name in codes:  # the column's code table (``_code_table``)
        v = v.replace_strict(codes[name], default=None, return_dtype=pl.String)
    if dtype == pl.Date:
        # ISO when None, Excel day numbers, month names in English or French, offsets
        return parse_dates(v, mapping.date_formats.get(name))
    if dtype.is_float():
        if mapping.format.decimal == ",":
            v = v.str.replace(",", ".", literal=True)
        v = v.cast(dtype, strict=False)
        fixed = mapping.fixed_units()
        if name in fixed:
            v = v * UNIT_FACTORS[name][fixed[name]]
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


def _cast_rule(
    column: str, dtype: pl.DataType, mapping: FormMapping, codes: dict[str, dict[str, str]]
) -> tuple[str, str]:
    """The rule a value broke when it could not be cast, and how to say it."""
    if column in codes:
        return "unknown code", f"is not one of the codes configured for {column}"
    extract = mapping.column_extracts().get(column)
    if extract is not None:
        return "extract", f"is not matched by extract.{column} {extract!r}"
    expected = _TYPE_NAMES.get(dtype, str(dtype))
    if dtype == pl.Date:
        expected += f" ({mapping.date_formats.get(column, '%Y-%m-%d')})"
    return f"type: {expected}", f"is not {expected}"


@functools.cache
def allowed_values(form: Form, column: str) -> list | None:
    """The values a coded canonical column allows (its schema's ``isin``), or None."""
    checks = form.schema.to_schema().columns[column].checks
    return next((c.statistics["allowed_values"] for c in checks if c.name == "isin"), None)


def _distinct(text: pl.DataFrame, column: str, mapping: FormMapping) -> list[str]:
    return text.select(_extracted(column, mapping).unique().drop_nulls()).to_series().to_list()


def _cast(text: pl.DataFrame, mapping: FormMapping, form: Form):
    """Translate codes and cast to the form's dtypes; a text that gives null is a failure."""
    # One chunk per column: polars 2.1 panics ("i < self.len()" in binview) when a
    # multi-chunk string frame is filtered by a mask computed from another frame (seen on
    # a 3,574-row REDCap export of a 20,000-patient simulation).
    text = text.rechunk()
    columns = form.columns()
    present = [c for c in columns if c in text.columns]
    codes = {
        c: _code_table(_distinct(text, c, mapping), table, columns[c], allowed_values(form, c))
        for c, table in mapping.column_codes().items()
        if c in present
    }
    extracted = mapping.column_extracts()
    converted = [c for c in present if columns[c] != pl.String or c in codes or c in extracted]
    # the cast values beside the texts (canonical names never hold ':'), so that finding
    # the failures is one pass over the frame rather than a few per column
    both = text.with_columns(
        _cast_expr(c, columns[c], mapping, codes).alias(f"cast:{c}") for c in converted
    )
    failed = {c: pl.col(c).is_not_null() & pl.col(f"cast:{c}").is_null() for c in converted}
    any_failed = both.select(f.any().alias(c) for c, f in failed.items()).row(0) if failed else ()
    failures = []
    for c, has_failures in zip(converted, any_failed, strict=True):
        if has_failures:
            rule, explanation = _cast_rule(c, columns[c], mapping, codes)
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

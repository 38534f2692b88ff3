"""The baseline a user would write without cohortflow: pandas + Pandera's pandas backend.

Same inputs and the same job as cohortflow's reader for CSV centres: read each file with
the centre's format, rename (or melt a wide layout), translate codes, convert units,
parse dates, cast, validate lazily against the same rules (ranges, codes, required
fields, natural-key uniqueness, dates not in the future), and load the valid rows into
DuckDB. Not done here (cohortflow does them): lineage, pseudonyms, quarantine tables,
cross-form rules, history. So the comparison flatters the baseline.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import io
import re
from pathlib import Path

import duckdb
import pandas as pd
import pandera.pandas as pa
import polars as pl

from schemas.forms import FORMS, Form
from transforms.staging.mapping import UNIT_FACTORS, FormMapping, load_all_mappings

_DTYPES = {pl.Int64: "Int64", pl.Float64: "float64", pl.Date: "datetime64[ns]", pl.String: object}
_CHECKS = {
    "greater_than_or_equal_to": pa.Check.ge,
    "less_than_or_equal_to": pa.Check.le,
    "greater_than": pa.Check.gt,
}


def _check(check) -> pa.Check | None:
    stats = check.statistics or {}
    if check.name in _CHECKS:
        value = next(iter(stats.values()))
        if isinstance(value, dt.date):
            value = pd.Timestamp(value)
        return _CHECKS[check.name](value)
    if check.name == "isin":
        return pa.Check.isin(list(next(iter(stats.values()))))
    if check.name == "not_in_future":
        return pa.Check(lambda s: s <= pd.Timestamp.today(), name="not_in_future")
    return None  # a dataframe-wide rule of the polars schema (e.g. mg or mg/kg given)


def pandas_schema(form: Form) -> pa.DataFrameSchema:
    """The form's Pandera rules, rebuilt for the pandas backend."""
    columns = {}
    for name, column in form.schema.to_schema().columns.items():
        checks = [c for c in map(_check, column.checks) if c is not None]
        dtype = _DTYPES[form.columns()[name]]
        columns[name] = pa.Column(dtype, checks=checks, nullable=column.nullable)
    return pa.DataFrameSchema(columns, unique=["patient_id", *form.key[1:]])


def read_mapped(path: Path, mapping: FormMapping, form: Form) -> pd.DataFrame:
    fmt = mapping.format
    text = pd.read_csv(
        io.BytesIO(path.read_bytes()),
        sep=fmt.delimiter,
        encoding=fmt.encoding,
        dtype=str,
        keep_default_na=False,
        na_values=mapping.missing_values,
    )
    if mapping.layout == "wide":
        text = _melt(text, mapping)
    else:
        text = text.rename(columns={s: c for c, s in mapping.columns.items()})
    return _cast(text, mapping, form)


def _melt(text: pd.DataFrame, mapping: FormMapping) -> pd.DataFrame:
    ids = {s: c for c, s in mapping.id_columns.items()}
    parts = []
    for name, pattern in mapping.wide_columns.items():
        cols = [c for c in text.columns if re.fullmatch(pattern, c)]
        long = text.melt(id_vars=list(ids), value_vars=cols, var_name="_src", value_name=name)
        long["month"] = long["_src"].str.extract(f"^(?:{pattern})$", expand=False)
        parts.append(long.drop(columns="_src"))
    merged = parts[0]
    for other in parts[1:]:
        merged = merged.merge(other, on=[*ids, "month"], how="outer")
    measures = list(mapping.wide_columns)
    return merged.dropna(subset=measures, how="all").rename(columns=ids)


def _cast(text: pd.DataFrame, mapping: FormMapping, form: Form) -> pd.DataFrame:
    out = pd.DataFrame(index=text.index)
    for name, dtype in form.columns().items():
        values = text[name] if name in text else pd.Series(pd.NA, index=text.index, dtype=object)
        if name in mapping.codes:
            values = values.map(mapping.codes[name])
        if dtype == pl.Date:
            values = pd.to_datetime(
                values, format=mapping.date_formats.get(name, "%Y-%m-%d"), errors="coerce"
            )
        elif dtype in (pl.Int64, pl.Float64):
            if mapping.format.decimal == ",":
                values = values.str.replace(",", ".", regex=False)
            values = pd.to_numeric(values, errors="coerce")
            if name in mapping.units:
                values = values * UNIT_FACTORS[name][mapping.units[name]]
            if dtype == pl.Int64:
                values = values.where(values == values.round()).astype("Int64")
        out[name] = values
    return out


def ingest_with_pandas(workspace: Path) -> int:
    """Every CSV export of the workspace, validated; valid rows loaded. Returns rows read."""
    con = duckdb.connect(str(workspace / "pandas_baseline.duckdb"))
    schemas = {name: pandas_schema(form) for name, form in FORMS.items()}
    rows = 0
    for centre, mapping in load_all_mappings(workspace / "centres").items():
        for path in sorted((workspace / "inbox" / centre).glob("*.csv")):
            for name, form_mapping in mapping.forms.items():
                if not fnmatch.fnmatch(path.name, form_mapping.file_pattern):
                    continue
                frame = read_mapped(path, form_mapping, FORMS[name])
                rows += len(frame)
                try:
                    valid = schemas[name].validate(frame, lazy=True)
                except pa.errors.SchemaErrors as errors:
                    bad = errors.failure_cases["index"].dropna().unique()
                    valid = frame.drop(index=bad)
                table = f"{name}_rows"
                con.register("incoming", valid)
                con.execute(f"CREATE TABLE IF NOT EXISTS {table} AS FROM incoming LIMIT 0")
                con.execute(f"INSERT INTO {table} SELECT * FROM incoming")
                con.unregister("incoming")
    con.close()
    return rows

"""Staged frame -> valid records + quarantine, with every failure reported at once.

Order: exact duplicates are set aside (counted, not quarantined: they carry no new
information), then the Pandera schema runs lazily over the rest, and its failure cases
are joined with the cast failures found while reading. A record with any failure goes
to quarantine whole; the others are valid. Every record read ends up in exactly one of
valid, quarantined or duplicate.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandera.errors
import polars as pl

from schemas.forms import Form
from transforms.read import FAILURE_SCHEMA, StagedFile, shortened

QUARANTINE_SCHEMA = {
    "_record": pl.Int64,
    "_source_row": pl.Int64,
    "column": pl.String,
    "source_column": pl.String,
    "rule": pl.String,
    "value": pl.String,
    "message": pl.String,
}


@dataclass
class ValidatedFile:
    valid: pl.DataFrame  # canonical columns + lineage, patient_id still local
    quarantine: pl.DataFrame  # one row per (record, failure), QUARANTINE_SCHEMA
    rows_read: int
    rows_duplicate: int

    @property
    def rows_quarantined(self) -> int:
        return self.quarantine["_record"].n_unique()


def validate_staged(staged: StagedFile, form: Form) -> ValidatedFile:
    """Split a staged file into valid records and quarantined ones (never both, never none)."""
    frame = staged.frame
    canonical = list(form.columns())
    # A record whose text failed a cast is never called a duplicate: its null hides a value.
    castable = ~frame["_record"].is_in(staged.cast_failures["_record"].implode())
    repeat = frame.select(~pl.struct(canonical).is_first_distinct()).to_series()
    duplicate = castable & repeat
    candidates = frame.filter(~duplicate)
    failures = pl.concat([staged.cast_failures, _schema_failures(candidates, form)])
    # A value that failed its cast is null now; do not report it a second time as missing.
    failures = failures.unique(subset=["_record", "column"], keep="first", maintain_order=True)
    bad_records = failures["_record"].unique()
    quarantine = _describe(failures, candidates, staged.source_columns)
    return ValidatedFile(
        valid=candidates.filter(~pl.col("_record").is_in(bad_records.implode())),
        quarantine=quarantine,
        rows_read=frame.height,
        rows_duplicate=int(duplicate.sum()),
    )


def _schema_failures(frame: pl.DataFrame, form: Form) -> pl.DataFrame:
    """Pandera's lazy failure cases, one row per (record, column, check)."""
    try:
        form.schema.validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as exc:
        cases = exc.failure_cases
    else:
        return pl.DataFrame(schema=FAILURE_SCHEMA)
    cases = cases.filter(pl.col("index").is_not_null())
    key = ", ".join(form.schema.Config.unique or [])
    is_unique = pl.col("check").str.contains("uniqueness|^unique")
    return (
        cases.with_columns(_record=frame["_record"].gather(cases["index"]))
        .with_columns(
            column=pl.when(is_unique).then(pl.lit(key)).otherwise(pl.col("column")),
            rule=pl.when(is_unique)
            .then(pl.lit(f"conflicting duplicate of natural key ({key})"))
            .otherwise(pl.col("check")),
            value=pl.when(is_unique).then(None).otherwise(pl.col("failure_case").cast(pl.String)),
        )
        .with_columns(value=shortened(pl.col("value")))
        .with_columns(message=_message())
        .select(list(FAILURE_SCHEMA))
        .cast(FAILURE_SCHEMA)
    )


def _message() -> pl.Expr:
    readable = (
        pl.col("rule")
        .str.replace(r"^greater_than_or_equal_to\((.*)\)$", "must be >= $1")
        .str.replace(r"^less_than_or_equal_to\((.*)\)$", "must be <= $1")
        .str.replace(r"^isin\((.*)\)$", "must be one of $1")
        .str.replace(r"^not_nullable$", "is required")
        .str.replace(r"^not_in_future$", "is in the future")
    )
    return (
        pl.when(pl.col("value").is_null())
        .then(pl.format("{} {}", pl.col("column"), readable))
        .otherwise(pl.format("{} = '{}': {}", pl.col("column"), pl.col("value"), readable))
    )


def _describe(
    failures: pl.DataFrame, frame: pl.DataFrame, source_columns: dict[str, str]
) -> pl.DataFrame:
    """Attach the source row and source column name to each failure."""
    src_cols = [c for c in frame.columns if c.startswith("_src_")]
    located = failures.join(
        frame.select("_record", "_source_row", *src_cols), on="_record", how="left"
    )
    source_column = pl.col("column").replace_strict(source_columns, default=pl.col("column"))
    for c in src_cols:  # wide layouts: the column the value came from (e.g. EN_M3)
        source_column = (
            pl.when(pl.col("column") == c.removeprefix("_src_"))
            .then(pl.col(c))
            .otherwise(source_column)
        )
    return (
        located.with_columns(source_column=source_column)
        .select(list(QUARANTINE_SCHEMA))
        .sort("_record", "column")
    )

"""Staged frame -> valid records + quarantine, with every failure reported at once.

Order: exact duplicates are set aside (counted, not quarantined: they carry no new
information), then the Pandera schema runs lazily over the rest, and its failure cases
are joined with the cast failures found while reading. A record with any failure goes
to quarantine whole; the others are valid. Every record read ends up in exactly one of
valid, quarantined or duplicate.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Sequence
from dataclasses import dataclass

import pandera.errors
import polars as pl

from schemas.forms import UNIT_CONFUSIONS, Form
from transforms.staging.read import FAILURE_SCHEMA, StagedFile, shortened

QUARANTINE_SCHEMA = pl.Schema(
    {
        "_record": pl.Int64,
        "_source_row": pl.Int64,
        "column": pl.String,
        "source_column": pl.String,
        "rule": pl.String,
        "value": pl.String,
        "message": pl.String,
    }
)


@dataclass
class ValidatedFile:
    valid: pl.DataFrame  # canonical columns + lineage, patient_id still local
    quarantine: pl.DataFrame  # one row per (record, failure), QUARANTINE_SCHEMA
    rows_read: int
    rows_duplicate: int

    @property
    def rows_quarantined(self) -> int:
        return self.quarantine["_record"].n_unique()


@dataclass
class ValidatedBatch:
    """Several files of one form validated together, each still told apart by ``_file``.

    ``_record`` is unique across the batch: file ``i``'s records are offset by
    ``offsets[i]`` (``local_record`` gives the position in the file back).
    """

    valid: pl.DataFrame  # canonical columns + lineage + _file, patient_id still local
    quarantine: pl.DataFrame  # QUARANTINE_SCHEMA + patient_id, _file
    quarantined_keys: pl.DataFrame  # _file and natural key (local id) of quarantined records
    rows_read: list[int]
    rows_duplicate: list[int]
    offsets: list[int]

    def local_record(self) -> pl.Expr:
        """The record's position in its own file (what a data manager looks up)."""
        offsets = pl.Series(self.offsets, dtype=pl.Int64)
        return pl.col("_record") - pl.col("_file").replace_strict(
            range(len(offsets)), offsets, return_dtype=pl.Int64
        )


def validate_staged(staged: StagedFile, form: Form) -> ValidatedFile:
    """Split a staged file into valid records and quarantined ones (never both, never none)."""
    batch = validate_batch([staged], form)
    return ValidatedFile(
        valid=batch.valid.drop("_file"),
        quarantine=batch.quarantine.drop("_file"),
        rows_read=batch.rows_read[0],
        rows_duplicate=batch.rows_duplicate[0],
    )


def validate_batch(files: Sequence[StagedFile], form: Form) -> ValidatedBatch:
    """Validate many files of a form at once, with exactly the per-file rules.

    Pandera costs a fixed ~20 ms per call whatever the rows (one collect per check), so a
    night validates each form once, not each file. Uniqueness of the natural key and exact
    duplicates stay per file: ``_file`` is part of both.
    """
    if not files:
        raise ValueError("validate_batch needs at least one file")
    offsets = _offsets(files)
    numbered = [pl.lit(i, pl.Int32).alias("_file") for i in range(len(files))]
    shifted = [pl.col("_record") + offset for offset in offsets]
    frame = pl.concat(
        [f.frame.with_columns(numbered[i], shifted[i]) for i, f in enumerate(files)],
        how="diagonal_relaxed",
    )
    cast_failures = pl.concat(
        [f.cast_failures.with_columns(numbered[i], shifted[i]) for i, f in enumerate(files)],
        how="vertical_relaxed",
    )
    canonical = list(form.columns())
    # A record whose text failed a cast is never called a duplicate: its null hides a value.
    castable = ~frame["_record"].is_in(cast_failures["_record"].implode())
    repeat = frame.select(~pl.struct("_file", *canonical).is_first_distinct()).to_series()
    duplicate = castable & repeat
    flagged = frame.select("_file", duplicate.alias("duplicate"))
    duplicates = dict(flagged.group_by("_file").agg(pl.sum("duplicate")).iter_rows())
    candidates = frame.filter(~duplicate) if duplicate.any() else frame
    del frame, flagged, castable, repeat, duplicate  # a night's batch can be large
    failures = pl.concat(
        [cast_failures.drop("_file"), _schema_failures(candidates, form)], how="vertical_relaxed"
    )
    # A value that failed its cast is null now; do not report it a second time as missing.
    failures = failures.unique(subset=["_record", "column"], keep="first", maintain_order=True)
    bad = pl.col("_record").is_in(failures["_record"].unique().implode())
    source_columns = [f.source_columns for f in files]
    return ValidatedBatch(
        valid=candidates.filter(~bad),
        quarantine=_describe(failures, candidates, source_columns),
        quarantined_keys=candidates.filter(bad)
        .select("_file", "patient_id", *form.key[1:])
        .drop_nulls(),
        rows_read=[f.frame.height for f in files],
        rows_duplicate=[int(duplicates.get(i, 0)) for i in range(len(files))],
        offsets=offsets,
    )


def _offsets(files: Sequence[StagedFile]) -> list[int]:
    """Where each file's records start in a batch (records are numbered from 0 per file)."""
    offsets, start = [], 0
    for f in files:
        offsets.append(start)
        if f.frame.height:
            start += int(f.frame.select(pl.col("_record").max()).item()) + 1
    return offsets


@functools.cache
def _batch_schema(form: Form):
    """The form's schema with its natural key unique per file (``_file``) in a batch."""
    schema = copy.deepcopy(form.schema.to_schema())
    schema.unique = ["_file", *(form.schema.Config.unique or [])]
    return schema


def _schema_failures(frame: pl.DataFrame, form: Form) -> pl.DataFrame:
    """Pandera's lazy failure cases, one row per (record, column, check)."""
    try:
        _batch_schema(form).validate(frame, lazy=True)
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
        .replace(UNIT_CONFUSIONS)
    )
    return (
        pl.when(pl.col("value").is_null())
        .then(pl.format("{} {}", pl.col("column"), readable))
        .otherwise(pl.format("{} = '{}': {}", pl.col("column"), pl.col("value"), readable))
    )


def _describe(
    failures: pl.DataFrame, frame: pl.DataFrame, source_columns: list[dict[str, str]]
) -> pl.DataFrame:
    """Attach the file, source row and source column name to each failure."""
    src_cols = [c for c in frame.columns if c.startswith("_src_")]
    located = failures.join(
        frame.select("_record", "_file", "_source_row", "patient_id", *src_cols),
        on="_record",
        how="left",
    )
    renamed = pl.DataFrame(  # each file's own column names (long layouts)
        [(i, c, s) for i, names in enumerate(source_columns) for c, s in names.items()],
        schema={"_file": pl.Int32, "column": pl.String, "_renamed": pl.String},
        orient="row",
    )
    located = located.join(renamed, on=["_file", "column"], how="left")
    source_column = pl.coalesce("_renamed", "column")
    for c in src_cols:  # wide layouts: the column the value came from (e.g. EN_M3);
        # null for the batch's files of long layout
        source_column = (
            pl.when((pl.col("column") == c.removeprefix("_src_")) & pl.col(c).is_not_null())
            .then(pl.col(c))
            .otherwise(source_column)
        )
    return (
        _without_local_ids(located.with_columns(source_column=source_column))
        .select(*QUARANTINE_SCHEMA, "patient_id", "_file")
        .sort("_record", "column")
    )


def _without_local_ids(located: pl.DataFrame) -> pl.DataFrame:
    """A failing value that is the row's own local id (its id column, or another column
    copying it) is never kept, nor quoted in the message: the pseudonym says who it was."""
    own_id = pl.col("value").str.strip_chars() == pl.col("patient_id")
    hidden = pl.format("{} holds the row's local patient id (not shown): {}", "column", "rule")
    return located.with_columns(
        message=pl.when(own_id).then(hidden).otherwise("message"),
        value=pl.when(own_id).then(None).otherwise("value"),
    )

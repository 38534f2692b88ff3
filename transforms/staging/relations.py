"""Rules across forms: a record needs its patient's inclusion, and dates must agree with it.

These need the patients already in the warehouse, so they run at load time (after the
per-file Pandera checks), as pure functions of the file's valid rows and the centre's
patients.
"""

from __future__ import annotations

import polars as pl

from schemas.forms import DAYS_PER_MONTH, Form

ROW = ["_file_hash", "_record"]  # a row's identity: file and position in it
FAILURE_SCHEMA = pl.Schema(
    {
        "_file_hash": pl.String,
        "_record": pl.Int64,
        "_source_row": pl.Int64,
        "patient_key": pl.String,
        "column": pl.String,
        "rule": pl.String,
        "value": pl.String,
        "message": pl.String,
    }
)


def relational_failures(
    valid: pl.DataFrame, form: Form, patients: pl.DataFrame, waiting: pl.Series
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split valid rows (of one or more files) into those consistent with their patient,
    and failures.

    ``patients``: the centres' patient_key and inclusion_date; ``waiting``: patient keys
    whose inclusion record is in quarantine (to say why a row has no patient).
    """
    if form.table == "patients" or valid.height == 0:
        return valid, pl.DataFrame(schema=FAILURE_SCHEMA)
    rows = valid.join(patients, on="patient_key", how="left", suffix="_patient")
    checks = [_unknown_patient(waiting)]
    if form.date_column:
        checks.append(_before_inclusion(form.date_column))
    if form.name == "follow_up":
        checks.append(_month_inconsistent())
    failures = pl.concat(
        [rows.filter(condition).select(*describe) for condition, describe in checks]
    ).cast(FAILURE_SCHEMA)
    return valid.join(failures.select(ROW), on=ROW, how="anti", maintain_order="left"), failures


def _failure(column: str, rule: str, value: pl.Expr, message: pl.Expr) -> list[pl.Expr]:
    return [
        pl.col("_file_hash"),
        pl.col("_record"),
        pl.col("_source_row"),
        pl.col("patient_key"),
        pl.lit(column).alias("column"),
        pl.lit(rule).alias("rule"),
        value.cast(pl.String).alias("value"),
        message.alias("message"),
    ]


def _unknown_patient(waiting: pl.Series):
    in_quarantine = pl.col("patient_key").is_in(waiting.implode())
    message = (
        pl.when(in_quarantine)
        .then(pl.lit("the patient's inclusion record is in quarantine; fix it and re-export"))
        .otherwise(pl.lit("no inclusion record for this patient in the centre"))
    )
    return pl.col("inclusion_date").is_null(), _failure(
        "patient_id", "unknown patient", pl.lit(None, pl.String), message
    )


def _before_inclusion(date_column: str):
    date = pl.col(date_column)
    condition = pl.col("inclusion_date").is_not_null() & (date < pl.col("inclusion_date"))
    message = pl.format(
        "{} = {} is before the inclusion date {}", pl.lit(date_column), date, "inclusion_date"
    )
    return condition, _failure(date_column, "before inclusion", date, message)


def _month_inconsistent():
    """The call date must fall in the month it reports: its nearest month since inclusion."""
    elapsed = (pl.col("call_date") - pl.col("inclusion_date")).dt.total_days() / DAYS_PER_MONTH
    nearest = elapsed.round(0).cast(pl.Int64)
    condition = (
        pl.col("inclusion_date").is_not_null()
        & pl.col("call_date").is_not_null()
        & (pl.col("call_date") >= pl.col("inclusion_date"))
        & (nearest != pl.col("month"))
    )
    message = pl.format(
        "month {} but the call on {} is month {} after inclusion",
        "month",
        "call_date",
        nearest,
    )
    return condition, _failure(
        "month", "month inconsistent with call date", pl.col("month"), message
    )

"""Quarantined rows that waited for another record, loaded once that record is fixed.

A follow-up (or any form but inclusion) fails a rule across forms when its patient's
inclusion record is missing, quarantined, or dated after it. When the centre fixes the
inclusion, the rows that waited for it must not stay in quarantine because their own
file did not change (invariant 8). ``waiting_records`` finds them: open quarantine
entries whose every failure is such a rule and whose patient's inclusion row was written
after they were quarantined. ``load_requeued`` writes those that now pass, in one
transaction: their rows (history kept), their quarantine entries marked resolved by this
run, and their file's counts moved from quarantined to loaded, so that rows read =
loaded + quarantined + duplicates still holds for every file.

A waiting row is not applied over a newer version of its key (a row written by a later
run than the one that quarantined it): the centre's newer export wins, as it would have
had the row loaded on time. Such a row counts as loaded then superseded, as it would
have: its entries are resolved and it is never read again.
"""

from __future__ import annotations

import duckdb
import polars as pl

from schemas.forms import Form
from transforms.staging.relations import ROW, relational_failures
from transforms.warehouse import history
from transforms.warehouse.runs import run_seq

# Rules across forms (transforms.staging.relations): they depend on another record.
RELATIONAL_RULES = ("unknown patient", "before inclusion", "month inconsistent with call date")


def waiting_records(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Open quarantined records that may pass now: one row per (file, form, record).

    Columns: file_hash, form, centre_id, file_name, record, patient_key, queued_seq (the
    run that quarantined the record).
    """
    rules = ", ".join(f"'{rule}'" for rule in RELATIONAL_RULES)  # constants, not input
    return con.sql(
        f"""WITH records AS (
                SELECT file_hash, form, centre_id, any_value(file_name) AS file_name, record,
                       any_value(patient_key) AS patient_key, max(run_id) AS run_id,
                       bool_and(rule IN ({rules})) AS relational
                FROM quarantine
                WHERE resolved_run_id IS NULL AND form <> 'inclusion'
                GROUP BY file_hash, form, centre_id, record)
            SELECT r.file_hash, r.form, r.centre_id, r.file_name, r.record, r.patient_key,
                   rq.run_seq AS queued_seq
            FROM records r
            JOIN patients p ON p.patient_key = r.patient_key
            JOIN runs rq ON rq.run_id = r.run_id
            JOIN runs rp ON rp.run_id = p._run_id
            WHERE r.relational AND rp.run_seq > rq.run_seq
            ORDER BY r.centre_id, r.form, rq.run_seq, r.file_hash, r.record"""
    ).pl()


def load_requeued(
    con: duckdb.DuckDBPyConnection, form: Form, rows: pl.DataFrame, run_id: str
) -> dict[str, int]:
    """Load the waiting rows of one form that pass the rules across forms now.

    ``rows``: pseudonymised canonical rows of waiting records (patient_key, centre_id,
    value columns, _file_hash, _record, _source_row, queued_seq). Returns the rows loaded
    per file hash, superseded ones included (records still failing stay in quarantine,
    unchanged).
    """
    passing, superseded = _passing(con, form, rows)
    if passing.height + superseded.height == 0:
        return {}
    values = [c for c in form.columns() if c != "patient_id"]
    incoming = passing.select(
        "patient_key", "centre_id", *values, "_source_row", "_file_hash"
    ).with_columns(_run_id=pl.lit(run_id))
    records = pl.concat([passing.select(ROW), superseded.select(ROW)]).select(
        file_hash="_file_hash", record="_record", form=pl.lit(form.name)
    )
    con.register("requeued_rows", incoming)
    con.register("requeued_records", records)
    con.execute("BEGIN TRANSACTION")
    try:
        applied = history.apply_rows(con, form, "requeued_rows", run_id, run_seq(con, run_id))
        _resolve(con, run_id)
        loaded = dict(records.group_by("file_hash").len().iter_rows())
        _move_counts(con, form, loaded, applied)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        con.unregister("requeued_rows")
        con.unregister("requeued_records")
    return loaded


def _passing(
    con: duckdb.DuckDBPyConnection, form: Form, rows: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The rows consistent with their patient now: those to write, and those whose key a
    newer export already holds (superseded)."""
    centres = rows["centre_id"].unique().to_list()
    patients = con.sql(
        "SELECT patient_key, inclusion_date FROM patients WHERE list_contains(?, centre_id)",
        params=[centres],
    ).pl()
    waiting = pl.Series("patient_key", [], dtype=pl.String)  # only patients that exist pass
    valid, _ = relational_failures(rows, form, patients, waiting)
    key = list(form.key)
    current = con.sql(
        f"""SELECT {", ".join(key)}, r.run_seq AS current_seq
            FROM {form.table} t JOIN runs r ON r.run_id = t._run_id
            WHERE list_contains(?, t.centre_id)""",
        params=[centres],
    ).pl()
    joined = valid.join(current, on=key, how="left", maintain_order="left")
    newer = pl.col("current_seq").is_null() | (pl.col("current_seq") < pl.col("queued_seq"))
    joined = joined.with_columns(_newer=newer).drop("current_seq")
    joined = joined.unique(subset=ROW, maintain_order=True)
    return joined.filter("_newer").drop("_newer"), joined.filter(~pl.col("_newer"))


def _resolve(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    """The loaded records' quarantine entries: resolved by this run (kept, not deleted)."""
    con.execute(
        """UPDATE quarantine SET resolved_run_id = ?
           WHERE resolved_run_id IS NULL
             AND EXISTS (SELECT 1 FROM requeued_records r
                         WHERE r.file_hash = quarantine.file_hash AND r.form = quarantine.form
                           AND r.record = quarantine.record)""",
        [run_id],
    )


def _move_counts(
    con: duckdb.DuckDBPyConnection,
    form: Form,
    loaded: dict[str, int],
    applied: dict[str, dict[str, int]],
) -> None:
    """Each file's rows move from quarantined to loaded (and count as new or changed)."""
    for file_hash, n in loaded.items():
        delta = applied.get(file_hash, {})
        con.execute(
            """UPDATE ingested_files
               SET rows_loaded = rows_loaded + $n, rows_quarantined = rows_quarantined - $n,
                   rows_new = coalesce(rows_new, 0) + $new,
                   rows_changed = coalesce(rows_changed, 0) + $changed
               WHERE file_hash = $hash AND form = $form""",
            {
                "n": n,
                "new": delta.get("rows_new", 0),
                "changed": delta.get("rows_changed", 0),
                "hash": file_hash,
                "form": form.name,
            },
        )

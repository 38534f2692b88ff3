"""Loading validated batches: rows, quarantine and file records in one transaction.

Every harmonised row carries lineage (``centre_id``, ``_file_hash``, ``_source_row``,
``_run_id``). Files are loaded in batches (one form, at most one file per centre), each
in one transaction together with its quarantine rows and ``ingested_files`` records, so
a crash leaves the warehouse as before that batch: every file is loaded whole or not at
all, and the row counts recorded always match what was written.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import polars as pl

from schemas.forms import Form
from transforms.staging.relations import ROW, relational_failures
from transforms.warehouse import history
from transforms.warehouse.runs import now, run_seq


@dataclass
class LoadBatch:
    """Files of one form, validated and pseudonymised, written in one transaction.

    At most one file per centre: a centre's files of a form load in order, one batch
    after another, so that a batch applied at once equals its files applied in turn.
    """

    form: Form
    files: pl.DataFrame  # one row per file: FILE_COLUMNS
    valid: pl.DataFrame  # canonical columns with patient_key, centre_id, _file_hash, _record
    quarantine: pl.DataFrame  # validate.QUARANTINE_SCHEMA + patient_key, _file_hash
    quarantined_keys: pl.DataFrame  # natural keys of the quarantined records (patient_key)


FILE_COLUMNS = {
    "file_hash": pl.String,
    "centre_id": pl.String,
    "file_name": pl.String,
    "size_bytes": pl.Int64,
    "rows_read": pl.Int64,
    "rows_duplicate": pl.Int64,
    "full_export": pl.Boolean,
    "export_date": pl.Date,  # the date the export was made, as the mapping declares it
    "export_date_source": pl.String,  # where that date came from (file name, column, ...)
    "mapping_hash": pl.String,  # the centre's form mapping the file was staged with
}


def known_files(con: duckdb.DuckDBPyConnection) -> set[tuple[str, str]]:
    """(content hash, form) pairs already loaded: the same content is never loaded twice."""
    rows = con.execute(
        "SELECT file_hash, form FROM ingested_files WHERE status = 'loaded'"
    ).fetchall()
    return {(h, f) for h, f in rows}


def load_batch(con: duckdb.DuckDBPyConnection, batch: LoadBatch, run_id: str) -> dict:
    """Write a batch's valid rows, quarantine and file records in a single transaction.

    Returns each file's counts (those of ``ingested_files``), by file hash.
    """
    if batch.files["centre_id"].is_duplicated().any():
        raise ValueError("a load batch holds at most one file per centre")
    valid, broken = _check_relations(con, batch)
    quarantine = pl.concat([batch.quarantine, broken], how="diagonal_relaxed")
    rows = valid.select(
        "patient_key", "centre_id", *_value_columns(batch.form), "_source_row", "_file_hash"
    ).with_columns(_run_id=pl.lit(run_id))
    names = batch.files.select("centre_id", "file_name", _file_hash="file_hash")
    q_rows = (
        quarantine.drop("centre_id", strict=False)
        .join(names, on="_file_hash")
        .select(
            pl.col("_file_hash").alias("file_hash"),
            "centre_id",
            pl.lit(batch.form.name).alias("form"),
            "file_name",
            pl.col("_source_row").alias("source_row"),
            pl.col("_record").alias("record"),
            "patient_key",
            pl.col("column").alias("column_name"),
            "source_column",
            "rule",
            "value",
            "message",
            pl.lit(run_id).alias("run_id"),
        )
    )
    counts = _file_counts(batch.files, rows, quarantine)
    full = batch.files.filter("full_export").select("centre_id", "file_hash")
    # what the files hold beside their loaded rows (a full export's present keys)
    key = list(batch.form.key)
    set_aside = pl.concat(
        [
            batch.quarantined_keys.select(key),
            batch.valid.join(broken.select(ROW).unique(), on=ROW, how="semi").select(key),
        ]
    )
    seq = run_seq(con, run_id)
    relations = {
        "incoming_rows": rows,
        "incoming_quarantine": q_rows,
        "full_exports": full,
        "set_aside_keys": set_aside,
    }
    for name, frame in relations.items():
        con.register(name, frame)
    con.execute("BEGIN TRANSACTION")
    try:
        applied = history.apply_rows(con, batch.form, "incoming_rows", run_id, seq)
        absent = (
            history.flag_absent_rows(
                con, batch.form, "full_exports", ["incoming_rows", "set_aside_keys"], run_id
            )
            if full.height
            else {}
        )
        con.execute("INSERT INTO quarantine BY NAME SELECT * FROM incoming_quarantine")
        for file_hash, record in counts.items():
            record |= applied.get(file_hash, {"rows_new": 0, "rows_changed": 0, "rows_same": 0})
            if file_hash in absent:
                record["rows_absent"] = absent[file_hash]
        records = [
            {
                "file_hash": f["file_hash"],
                "form": batch.form.name,
                "centre_id": f["centre_id"],
                "file_name": f["file_name"],
                "size_bytes": f["size_bytes"],
                "export_date": f["export_date"],
                "export_date_source": f["export_date_source"],
                "mapping_hash": f["mapping_hash"],
                "status": "loaded",
                "run_id": run_id,
                **{k: v for k, v in counts[f["file_hash"]].items() if k != "rows_same"},
            }
            for f in batch.files.iter_rows(named=True)
        ]
        _record_files(con, records)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        for name in relations:
            con.unregister(name)
    return counts


def _file_counts(files: pl.DataFrame, rows: pl.DataFrame, quarantine: pl.DataFrame) -> dict:
    """Rows read, loaded, quarantined and duplicate of each file of a batch."""
    loaded = dict(rows.group_by("_file_hash").len().iter_rows())
    quarantined = dict(
        quarantine.group_by("_file_hash").agg(pl.col("_record").n_unique()).iter_rows()
    )
    return {
        f["file_hash"]: {
            "rows_read": f["rows_read"],
            "rows_loaded": loaded.get(f["file_hash"], 0),
            "rows_quarantined": quarantined.get(f["file_hash"], 0),
            "rows_duplicate": f["rows_duplicate"],
        }
        for f in files.iter_rows(named=True)
    }


def record_rejected(con, rejected: list[dict], run_id: str) -> None:
    """Files that could not be read at all: recorded (and retried on later nights).

    Each dict: file_hash, centre_id, form, file_name, size_bytes, error.
    """
    _record_files(con, [{**r, "status": "rejected", "run_id": run_id} for r in rejected])


_FILE_RECORD_TYPES = pl.Schema(
    [("size_bytes", pl.Int64()), ("ingested_at", pl.Datetime("us"))]
    + [
        (f"rows_{n}", pl.Int64())
        for n in ("read", "loaded", "quarantined", "duplicate", "new", "changed", "absent")
    ]
)


def _record_files(con, records: list[dict]) -> None:
    """Upsert rows of ingested_files (a rejected file may be retried and then loaded)."""
    if not records:
        return
    moment = now()
    frame = pl.DataFrame(
        [{**r, "ingested_at": moment} for r in records],
        schema_overrides=_FILE_RECORD_TYPES,
        infer_schema_length=None,
    )
    con.register("incoming_files", frame)
    try:
        con.execute("INSERT OR REPLACE INTO ingested_files BY NAME SELECT * FROM incoming_files")
    finally:
        con.unregister("incoming_files")


def _value_columns(form: Form) -> list[str]:
    return [c for c in form.columns() if c != "patient_id"]


def _check_relations(con, batch: LoadBatch) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Cross-form rules against the batch's centres' patients already in the warehouse."""
    centres = batch.files["centre_id"].to_list()
    patients = con.sql(
        "SELECT patient_key, inclusion_date FROM patients WHERE list_contains(?, centre_id)",
        params=[centres],
    ).pl()
    waiting = con.sql(
        "SELECT DISTINCT patient_key FROM quarantine "
        "WHERE form = 'inclusion' AND list_contains(?, centre_id)",
        params=[centres],
    ).pl()["patient_key"]
    return relational_failures(batch.valid, batch.form, patients, waiting)

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


def files_to_restage(
    con: duckdb.DuckDBPyConnection, mapping_hashes: dict[tuple[str, str], str]
) -> set[tuple[str, str]]:
    """(content hash, form) pairs loaded under a centre's mapping that has changed since
    (``mapping_hashes``: (centre, form) -> the current mapping's hash): read them again.

    Files loaded before mapping hashes were recorded are taken as read by the mapping in
    force (their mapping is unknown): a later change re-stages them.
    """
    rows = con.execute(
        "SELECT file_hash, form, centre_id, mapping_hash FROM ingested_files "
        "WHERE status = 'loaded'"
    ).fetchall()
    return {
        (file_hash, form)
        for file_hash, form, centre, recorded in rows
        if recorded is not None and mapping_hashes.get((centre, form), recorded) != recorded
    }


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
    restaged = _restaged_files(con, batch)
    rows = _without_superseded(con, batch.form, rows, restaged)
    full = batch.files.filter(
        pl.col("full_export") & ~pl.col("file_hash").is_in([h for h, newer in restaged if newer])
    ).select("centre_id", "file_hash")
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
        _supersede_quarantine(con, batch.form, [h for h, _ in restaged], run_id)
        con.execute("INSERT INTO quarantine BY NAME SELECT * FROM incoming_quarantine")
        for file_hash, record in counts.items():
            record |= applied.get(file_hash, {"rows_new": 0, "rows_changed": 0, "rows_same": 0})
            record["restaged"] = file_hash in {h for h, _ in restaged}
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
                **{
                    k: v
                    for k, v in counts[f["file_hash"]].items()
                    if k not in ("rows_same", "restaged")
                },
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
        # a file staged again keeps the time it was first received: the order of exports
        con.execute(
            """INSERT OR REPLACE INTO ingested_files BY NAME
               SELECT i.* REPLACE (coalesce(o.ingested_at, i.ingested_at) AS ingested_at)
               FROM incoming_files i LEFT JOIN ingested_files o
                 ON o.file_hash = i.file_hash AND o.form = i.form AND o.status = 'loaded'"""
        )
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
        "WHERE form = 'inclusion' AND resolved_run_id IS NULL AND list_contains(?, centre_id)",
        params=[centres],
    ).pl()["patient_key"]
    return relational_failures(batch.valid, batch.form, patients, waiting)


def _restaged_files(con: duckdb.DuckDBPyConnection, batch: LoadBatch) -> list[tuple[str, bool]]:
    """The batch's files loaded before (staged again under a changed mapping), each with
    whether the centre sent a newer export of the form since: (file hash, has newer)."""
    return con.execute(
        """SELECT f.file_hash, EXISTS (
                 SELECT 1 FROM ingested_files n
                 WHERE n.centre_id = f.centre_id AND n.form = f.form AND n.status = 'loaded'
                   AND n.file_hash <> f.file_hash AND n.ingested_at > f.ingested_at)
           FROM ingested_files f
           WHERE f.status = 'loaded' AND f.form = ? AND list_contains(?, f.file_hash)""",
        [batch.form.name, batch.files["file_hash"].to_list()],
    ).fetchall()


def _without_superseded(
    con: duckdb.DuckDBPyConnection,
    form: Form,
    rows: pl.DataFrame,
    restaged: list[tuple[str, bool]],
) -> pl.DataFrame:
    """A file staged again never writes over a row that a newer export of the centre wrote
    (replaying an old export would undo its corrections, then history would churn). Its
    rows stay counted as loaded: they were, and a newer export superseded them."""
    older = [h for h, newer in restaged if newer]
    if not older:
        return rows
    key = list(form.key)
    held = con.sql(
        f"""SELECT {", ".join(f"c.{k}" for k in key)}, f.ingested_at AS held_at
            FROM {form.table} c JOIN ingested_files f
              ON f.file_hash = c._file_hash AND f.form = ?
            WHERE list_contains(?, c.centre_id)""",
        params=[form.name, rows["centre_id"].unique().to_list()],
    ).pl()
    mine = con.sql(
        "SELECT file_hash AS _file_hash, ingested_at AS own_at FROM ingested_files "
        "WHERE form = ? AND list_contains(?, file_hash)",
        params=[form.name, older],
    ).pl()
    joined = rows.join(held, on=key, how="left").join(mine, on="_file_hash", how="left")
    newer = pl.col("held_at").is_not_null() & (pl.col("held_at") > pl.col("own_at"))
    return joined.filter(~newer.fill_null(False)).drop("held_at", "own_at")


def _supersede_quarantine(
    con: duckdb.DuckDBPyConnection, form: Form, file_hashes: list[str], run_id: str
) -> None:
    """A file staged again replaces its quarantine: the old entries are resolved by this
    run (kept, not deleted), the new ones inserted after (inside the caller's transaction)."""
    if file_hashes:
        con.execute(
            "UPDATE quarantine SET resolved_run_id = ? WHERE resolved_run_id IS NULL "
            "AND form = ? AND list_contains(?, file_hash)",
            [run_id, form.name, file_hashes],
        )

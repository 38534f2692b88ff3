"""The DuckDB warehouse: tables derived from the form schemas, and the one writer.

Every harmonised row carries lineage (``centre_id``, ``_file_hash``, ``_source_row``,
``_run_id``). Files are loaded in batches (one form, at most one file per centre), each
in one transaction together with its quarantine rows and ``ingested_files`` records, so
a crash leaves the warehouse as before that batch: every file is loaded whole or not at
all, and the row counts recorded always match what was written.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from cohortflow.errors import CohortflowError, WarehouseBusy
from schemas.forms import DUCKDB_TYPES, FORMS, VIEW_KEYS, Form
from transforms import digest, history, views
from transforms.relations import ROW, relational_failures

LINEAGE_COLUMNS = ("_file_hash", "_source_row", "_run_id")
LINEAGE_DDL = "_file_hash VARCHAR NOT NULL, _source_row BIGINT NOT NULL, _run_id VARCHAR NOT NULL"

OPERATIONAL_DDL = """
CREATE TABLE IF NOT EXISTS runs (
    run_id VARCHAR PRIMARY KEY, run_seq BIGINT NOT NULL UNIQUE,
    started_at TIMESTAMP NOT NULL, finished_at TIMESTAMP,
    status VARCHAR NOT NULL, files_loaded INTEGER, files_rejected INTEGER,
    rows_loaded BIGINT, rows_quarantined BIGINT, snapshot_id VARCHAR,
    models_published BOOLEAN DEFAULT false, message VARCHAR
);
CREATE TABLE IF NOT EXISTS ingested_files (
    file_hash VARCHAR NOT NULL, form VARCHAR NOT NULL, centre_id VARCHAR NOT NULL,
    file_name VARCHAR NOT NULL, size_bytes BIGINT, status VARCHAR NOT NULL,
    rows_read BIGINT, rows_loaded BIGINT, rows_quarantined BIGINT, rows_duplicate BIGINT,
    rows_new BIGINT, rows_changed BIGINT, rows_absent BIGINT,
    error VARCHAR, run_id VARCHAR NOT NULL, ingested_at TIMESTAMP NOT NULL,
    PRIMARY KEY (file_hash, form)
);
CREATE TABLE IF NOT EXISTS views_built (snapshot_id VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS quarantine (
    file_hash VARCHAR NOT NULL, centre_id VARCHAR NOT NULL, form VARCHAR NOT NULL,
    file_name VARCHAR NOT NULL, source_row BIGINT, record BIGINT NOT NULL,
    patient_key VARCHAR, column_name VARCHAR, source_column VARCHAR, rule VARCHAR NOT NULL,
    value VARCHAR, message VARCHAR NOT NULL, run_id VARCHAR NOT NULL
);
"""


def table_columns_ddl(form: Form) -> str:
    """A form's columns: its schema's, patient_key for the local id, then lineage."""
    cols = ["patient_key VARCHAR NOT NULL", "centre_id VARCHAR NOT NULL"]
    nullable = {n: c.nullable for n, c in form.schema.to_schema().columns.items()}
    for name, dtype in form.columns().items():
        if name != "patient_id":
            required = "" if nullable[name] else " NOT NULL"
            cols.append(f"{name} {DUCKDB_TYPES[dtype]}{required}")
    return ", ".join([*cols, LINEAGE_DDL])


def table_ddl(form: Form) -> str:
    """CREATE TABLE for a form, one row per natural key.

    The key is not declared a primary key: its index cost a third of the load time
    (2.9 M rows: 3 s of 8 s) for a uniqueness that the loader guarantees (keys unique per
    file, one file per centre per batch, upserts by key) and that the data-quality checks
    verify every night (``plau_unique_*``).
    """
    return f"CREATE TABLE IF NOT EXISTS {form.table} ({table_columns_ddl(form)})"


DUCKDB_MEMORY_LIMIT = os.environ.get("COHORTFLOW_DUCKDB_MEMORY", "1GB")


def connect(path: Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the warehouse (creating its tables); a clear error if another process holds it."""
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise WarehouseBusy(
                f"{path} is in use by another cohortflow process (one writer at a time); "
                "wait for it to finish and run again"
            ) from exc
        raise
    # DuckDB keeps the blocks it scanned cached up to its limit (80 % of RAM by default):
    # a night over a million patients would hold several GB for nothing
    con.execute(f"SET memory_limit = '{DUCKDB_MEMORY_LIMIT}'")
    if not read_only:
        con.execute(OPERATIONAL_DDL)
        con.execute(history.HISTORY_DDL)
        for form in FORMS.values():
            con.execute(table_ddl(form))
            con.execute(history.history_ddl(form, table_columns_ddl(form)))
        _create_derived_state(con)
    return con


def _create_derived_state(con: duckdb.DuckDBPyConnection) -> None:
    """The tables that keep derived state up to date batch by batch: the form tables'
    digests (snapshot ids) and the patients whose views are stale.

    A warehouse made before they were kept gets its digests computed whole once, and its
    views rebuilt whole once (batches loaded before may have left them stale unnoticed).
    """
    tracked = first_row(
        con, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'views_stale'"
    )[0]
    con.execute(digest.DIGEST_DDL)
    con.execute(views.STALE_DDL)
    if not tracked:
        con.execute("DELETE FROM views_built")
    digest.ensure(con)


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
    run_seq = _run_seq(con, run_id)
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
        applied = history.apply_rows(con, batch.form, "incoming_rows", run_id, run_seq)
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


def _run_seq(con, run_id: str) -> int:
    row = first_row(con, "SELECT run_seq FROM runs WHERE run_id = ?", [run_id])
    if row is None:
        raise ValueError(f"run {run_id} was not started (warehouse.start_run)")
    return row[0]


def record_rejected(con, rejected: list[dict], run_id: str) -> None:
    """Files that could not be read at all: recorded (and retried on later nights).

    Each dict: file_hash, centre_id, form, file_name, size_bytes, error.
    """
    _record_files(con, [{**r, "status": "rejected", "run_id": run_id} for r in rejected])


_FILE_RECORD_TYPES = {"size_bytes": pl.Int64, "ingested_at": pl.Datetime("us")} | {
    f"rows_{n}": pl.Int64
    for n in ("read", "loaded", "quarantined", "duplicate", "new", "changed", "absent")
}


def _record_files(con, records: list[dict]) -> None:
    """Upsert rows of ingested_files (a rejected file may be retried and then loaded)."""
    if not records:
        return
    now = _now()
    frame = pl.DataFrame(
        [{**r, "ingested_at": now} for r in records],
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


def first_row(con: duckdb.DuckDBPyConnection, sql: str, params=()) -> tuple | None:
    """The first row of a query, or None (the result is always consumed whole)."""
    rows = con.execute(sql, list(params)).fetchall()
    return rows[0] if rows else None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def new_run_id() -> str:
    """Sortable and unique: UTC time of the start, then a random suffix."""
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:6]


def start_run(con: duckdb.DuckDBPyConnection, run_id: str) -> int:
    """Register a run; returns its sequence number (the time axis of history)."""
    seq = first_row(con, "SELECT coalesce(max(run_seq), 0) + 1 FROM runs")[0]
    con.execute(
        "INSERT INTO runs (run_id, run_seq, started_at, status) VALUES (?, ?, ?, 'running')",
        [run_id, seq, _now()],
    )
    return seq


def finish_run(con: duckdb.DuckDBPyConnection, run_id: str, **fields) -> None:
    """Close a run with its status and counts (columns of ``runs``)."""
    fields = {"finished_at": _now(), **fields}
    assignments = ", ".join(f"{name} = ?" for name in fields)  # names are ours, not input
    con.execute(f"UPDATE runs SET {assignments} WHERE run_id = ?", [*fields.values(), run_id])


def current_tables(
    con: duckdb.DuckDBPyConnection,
    keys: tuple[str, str] | None = None,
    *,
    stale_only: bool = False,
) -> dict[str, pl.DataFrame]:
    """Every harmonised table as it stands, in natural-key order.

    ``keys``: only the patients whose key is in [low, high) (all rows of a patient);
    ``stale_only``: only the patients listed in ``views_stale``.
    """
    where, params = "", []
    if keys:
        where, params = "WHERE patient_key >= ? AND patient_key < ?", list(keys)
    elif stale_only:
        where = "WHERE patient_key IN (SELECT patient_key FROM views_stale)"
    return {
        f.table: con.sql(
            f"SELECT * FROM {f.table} {where} ORDER BY {', '.join(f.key)}", params=params
        ).pl()
        for f in FORMS.values()
    }


def content_hash(tables: dict[str, pl.DataFrame]) -> str:
    """A hash of harmonised values (lineage excluded), the same for the same data.

    Two warehouses holding the same data have the same snapshot id, whatever files or
    runs brought it; any changed value changes it. (The frames are hashed by DuckDB with
    the same row digests as the warehouse's tables.)
    """
    with duckdb.connect() as scratch:
        for form in FORMS.values():
            scratch.register(form.table, tables[form.table])
        return digest.snapshot_whole(scratch)


def snapshot_id(con: duckdb.DuckDBPyConnection) -> str:
    """The content hash of the warehouse as it stands, from the digests that each batch
    keeps up to date (``transforms/digest.py``): no pass over the tables.

    A read-only connection to a warehouse that has no digests yet hashes the tables whole.
    """
    kept = digest.stored(con)
    if all(form.table in kept for form in FORMS.values()):
        return digest.snapshot_of(kept)
    return digest.snapshot_whole(con)


def snapshot_run_seq(con: duckdb.DuckDBPyConnection, snapshot: str) -> int | None:
    """The last run whose data was this snapshot (its state can be rebuilt from history)."""
    row = first_row(
        con,
        "SELECT max(run_seq) FROM runs "
        "WHERE snapshot_id = ? AND status IN ('completed', 'partial')",
        [snapshot],
    )
    return row[0]


def materialise_snapshot(con: duckdb.DuckDBPyConnection, snapshot: str) -> dict[str, pl.DataFrame]:
    """The harmonised tables exactly as they were at ``snapshot``; checked by its hash."""
    seq = snapshot_run_seq(con, snapshot)
    if seq is None:
        raise CohortflowError(f"unknown snapshot {snapshot!r}: see the runs table for known ids")
    tables = history.tables_as_of(con, seq)
    if content_hash(tables) != snapshot:
        raise CohortflowError(f"snapshot {snapshot} could not be rebuilt identically from history")
    return tables


def last_published_snapshot(con: duckdb.DuckDBPyConnection) -> str | None:
    """Snapshot id of the last run that published model results."""
    row = first_row(
        con, "SELECT snapshot_id FROM runs WHERE models_published ORDER BY run_seq DESC LIMIT 1"
    )
    return row[0] if row else None


def refresh_views(con: duckdb.DuckDBPyConnection, snapshot: str, *, whole: bool = False) -> bool:
    """Bring the analysis views (``analysis_*`` tables) up to ``snapshot``, the current one.

    Only the patients whose rows changed since the views were built are rebuilt (the views
    are per patient: ``views_stale`` lists them, written with each batch). A first build,
    more than ``PATIENTS_PER_VIEW_CHUNK`` stale patients, a change no batch recorded, or
    ``whole`` rebuild them all, in chunks of patients. Returns whether anything was rebuilt.
    """
    built = first_row(con, "SELECT snapshot_id FROM views_built")
    stale = first_row(con, "SELECT count(DISTINCT patient_key) FROM views_stale")[0]
    if built and built[0] == snapshot and not whole:
        if stale:  # changed and changed back: the views of this content are already there
            views.replace_stale_patients(con, {}, snapshot)
        return False
    if built and 0 < stale <= PATIENTS_PER_VIEW_CHUNK and not whole:
        stale_rows = current_tables(con, stale_only=True)
        views.replace_stale_patients(con, views.build_views(stale_rows), snapshot)
        return True
    patients = first_row(con, "SELECT count(*) FROM patients")[0]
    chunks = (views.build_views(current_tables(con, keys)) for keys in _key_ranges(patients))
    views.materialise_view_chunks(con, chunks, snapshot)
    return True


PATIENTS_PER_VIEW_CHUNK = 100_000


def _key_ranges(patients: int) -> list[tuple[str, str] | None]:
    """Patient-key ranges that split the views' build into chunks of at most about
    100,000 patients (the views are per patient, so chunks concatenate to the whole build).

    Keys are "p" + hex digits, uniformly spread: ranges of their first two digits, in key
    order, so the concatenated chunks keep the whole build's order too.
    """
    chunks = min(-(-patients // PATIENTS_PER_VIEW_CHUNK), 256)
    if chunks <= 1:
        return [None]
    bounds = [f"p{i * 256 // chunks:02x}" for i in range(chunks)] + ["pg"]  # 'g' > any hex
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def analysis_views(
    con: duckdb.DuckDBPyConnection, columns: dict[str, tuple[str, ...]] | None = None
) -> dict[str, pl.DataFrame]:
    """The materialised analysis views, and adverse_events, as the models read them, in
    key order (views rebuilt for some patients are appended at the end of their tables).

    ``columns``: only these views (or adverse_events), with only these columns.
    """
    keys = VIEW_KEYS | {"adverse_events": FORMS["adverse_events"].key}
    wanted = columns or {name: ("*",) for name in keys}
    return {
        name: con.sql(
            f"SELECT {', '.join(selected)} FROM {name} ORDER BY {', '.join(keys[name])}"
        ).pl()
        for name, selected in wanted.items()
    }


def patient_months(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """One row per observed patient-month: the models' input (analysis_patient_months)."""
    return con.sql("SELECT * FROM analysis_patient_months ORDER BY patient_key, month").pl()


def write_run_quarantine(con: duckdb.DuckDBPyConnection, run_id: str, path: Path) -> int:
    """This run's quarantined rows as a CSV a data manager can open; returns the row count."""
    rows = con.sql(
        """SELECT centre_id, file_name, source_row, source_column, column_name, rule, value,
                  message, patient_key
           FROM quarantine WHERE run_id = ? ORDER BY centre_id, file_name, source_row""",
        params=[run_id],
    ).pl()
    if rows.height:
        path.parent.mkdir(parents=True, exist_ok=True)
        rows.write_csv(path)
    return rows.height


def quarantine_reasons(con: duckdb.DuckDBPyConnection, run_id: str) -> list[tuple[str, str, int]]:
    """This run's quarantine entries counted by form.column and rule, most frequent first."""
    return con.execute(
        """SELECT form || '.' || coalesce(column_name, '') AS field, rule, count(*) AS n
           FROM quarantine WHERE run_id = ?
           GROUP BY ALL ORDER BY n DESC, field, rule""",
        [run_id],
    ).fetchall()

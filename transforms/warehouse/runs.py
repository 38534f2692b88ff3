"""The runs table: every night, quality check and refit is a run, in sequence (the time
axis of history), closed with its status, counts and the snapshot it left."""

from __future__ import annotations

import datetime as dt
import uuid

import duckdb

from transforms.warehouse.connection import first_row, scalar


def run_seq(con: duckdb.DuckDBPyConnection, run_id: str) -> int:
    """The sequence number of a started run."""
    row = first_row(con, "SELECT run_seq FROM runs WHERE run_id = ?", [run_id])
    if row is None:
        raise ValueError(f"run {run_id} was not started (warehouse.start_run)")
    return row[0]


def now() -> dt.datetime:
    """UTC now, naive (DuckDB TIMESTAMP columns hold UTC)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def new_run_id() -> str:
    """Sortable and unique: UTC time of the start, then a random suffix."""
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:6]


def start_run(con: duckdb.DuckDBPyConnection, run_id: str) -> int:
    """Register a run; returns its sequence number (the time axis of history)."""
    seq = scalar(con, "SELECT coalesce(max(run_seq), 0) + 1 FROM runs")
    con.execute(
        "INSERT INTO runs (run_id, run_seq, started_at, status) VALUES (?, ?, ?, 'running')",
        [run_id, seq, now()],
    )
    return seq


def finish_run(con: duckdb.DuckDBPyConnection, run_id: str, **fields) -> None:
    """Close a run with its status and counts (columns of ``runs``)."""
    fields = {"finished_at": now(), **fields}
    assignments = ", ".join(f"{name} = ?" for name in fields)  # names are ours, not input
    con.execute(f"UPDATE runs SET {assignments} WHERE run_id = ?", [*fields.values(), run_id])


def last_published_snapshot(con: duckdb.DuckDBPyConnection) -> str | None:
    """Snapshot id of the last run that published model results."""
    row = first_row(
        con, "SELECT snapshot_id FROM runs WHERE models_published ORDER BY run_seq DESC LIMIT 1"
    )
    return row[0] if row else None

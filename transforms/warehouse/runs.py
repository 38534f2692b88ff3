"""The runs table: every night, quality check and refit is a run, in sequence (the time
axis of history), closed with its status, counts and the snapshot it left."""

from __future__ import annotations

import datetime as dt
import os
import socket
import uuid

import duckdb

from cohortflow.locks import process_alive
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


RUN_KINDS = ("night", "fit", "rekey")  # a run's kind, for people (cohortflow status)


def start_run(con: duckdb.DuckDBPyConnection, run_id: str, kind: str | None = None) -> int:
    """Register a run (its ``kind``: one of ``RUN_KINDS``) with the process that runs it;
    returns its sequence number.

    Runs of this host left ``running`` by a process that no longer exists are first
    marked ``abandoned``: the single-writer lock means no other live writer can hold one.
    """
    abandon_dead_runs(con, run_id)
    seq = scalar(con, "SELECT coalesce(max(run_seq), 0) + 1 FROM runs")
    con.execute(
        "INSERT INTO runs (run_id, run_seq, started_at, status, pid, host, kind)"
        " VALUES (?, ?, ?, 'running', ?, ?, ?)",
        [run_id, seq, now(), os.getpid(), socket.gethostname(), kind],
    )
    return seq


def abandon_dead_runs(con: duckdb.DuckDBPyConnection, by_run: str) -> list[str]:
    """Mark ``abandoned`` the ``running`` runs of this host whose process is gone.

    Runs of another host are never touched (their pid means nothing here), nor runs
    without a pid (recorded before pids were; nothing to check them by).
    """
    host = socket.gethostname()
    rows = con.execute(
        "SELECT run_id, pid FROM runs WHERE status = 'running' AND host = ? AND pid IS NOT NULL"
        " AND run_id <> ?",
        [host, by_run],
    ).fetchall()
    dead = [run for run, pid in rows if not process_alive(pid)]
    for run in dead:
        finish_run(
            con,
            run,
            status="abandoned",
            message=f"found abandoned by run {by_run}: process gone without closing its run",
        )
    return dead


def why_failed(exc: BaseException) -> str:
    """A failed run's message, never empty: a stop (SIGTERM, Ctrl-C, a cancelled
    deployment run) carries no text of its own, so it is named."""
    if not isinstance(exc, Exception):
        return f"stopped before it finished ({type(exc).__name__}); the next run completes it"
    return (str(exc) or type(exc).__name__)[:500]


def finish_run(con: duckdb.DuckDBPyConnection, run_id: str, **fields) -> None:
    """Close a run with its status and counts (columns of ``runs``)."""
    fields = {"finished_at": now(), **fields}
    assignments = ", ".join(f"{name} = ?" for name in fields)  # names are ours, not input
    con.execute(f"UPDATE runs SET {assignments} WHERE run_id = ?", [*fields.values(), run_id])


def runs_never_published(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Runs that ended without committing their models (killed, found abandoned, or
    failed before closing): a results folder of theirs is not a publication."""
    rows = con.execute(
        "SELECT run_id FROM runs WHERE status IN ('abandoned', 'failed') AND NOT models_published"
    ).fetchall()
    return {run for (run,) in rows}


def last_published_snapshot(con: duckdb.DuckDBPyConnection) -> str | None:
    """Snapshot id of the last run that published model results."""
    row = first_row(
        con, "SELECT snapshot_id FROM runs WHERE models_published ORDER BY run_seq DESC LIMIT 1"
    )
    return row[0] if row else None

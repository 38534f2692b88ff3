"""Which state of the warehouse a pull reads: the latest, an exact snapshot, or as of a time.

The latest state is the current tables; a past snapshot or an ``as_of`` time is rebuilt
from history, so a past state gives past tables (and, derived from them, past views).
A state carries the run that closed it, so a pull can say how to repeat it; the latest
data not closed by a completed run is pulled with a warning that its id pins nothing.
Times are naive UTC, as ``runs.started_at``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import polars as pl

from transforms import warehouse
from transforms.delivery.errors import PullError, UnknownSnapshot
from transforms.warehouse import history

Moment = dt.datetime | dt.date | str  # what an as_of may be given as


@dataclass(frozen=True)
class State:
    """One state of the warehouse: its tables, snapshot id and the run that closed it."""

    tables: dict[str, pl.DataFrame]
    snapshot_id: str
    run_seq: int | None  # last completed run with this data; None: no run closed it
    run_id: str | None
    resolved_from: str  # "latest", "snapshot" or "as_of <moment>"
    warnings: tuple[str, ...] = ()


def resolve_state(
    con: duckdb.DuckDBPyConnection,
    *,
    snapshot: str | None = None,
    as_of: Moment | None = None,
) -> State:
    """The warehouse as asked: latest (current tables), an exact snapshot, or as of a time."""
    if snapshot is not None and as_of is not None:
        raise PullError("give a snapshot or an as_of time, not both")
    if snapshot is not None:
        return _snapshot_state(con, snapshot)
    if as_of is not None:
        return _as_of_state(con, parse_as_of(as_of))
    return _latest_state(con)


def _latest_state(con: duckdb.DuckDBPyConnection) -> State:
    """The current tables, and the last completed run that left them so (if any)."""
    tables = warehouse.current_tables(con)
    snapshot = warehouse.content_hash(tables)
    run = warehouse.first_row(
        con,
        """SELECT run_seq, run_id FROM runs WHERE status = 'completed' AND snapshot_id = ?
           ORDER BY run_seq DESC LIMIT 1""",
        [snapshot],
    )
    if run is None:
        note = (
            f"the current data (snapshot {snapshot}) was not closed by a completed run "
            "(a run failed or none ran): this pull cannot be repeated by its snapshot id"
        )
        return State(tables, snapshot, None, None, "latest", (note,))
    return State(tables, snapshot, run[0], run[1], "latest")


def _snapshot_state(con: duckdb.DuckDBPyConnection, snapshot: str) -> State:
    """The tables as the last completed run with this snapshot id left them."""
    seq = warehouse.snapshot_run_seq(con, snapshot)
    if seq is None:
        known = con.execute(
            """SELECT snapshot_id FROM runs WHERE status = 'completed'
               GROUP BY snapshot_id ORDER BY max(run_seq) DESC LIMIT 5"""
        ).fetchall()
        listed = ", ".join(s for (s,) in known) or "none (no run has completed)"
        raise UnknownSnapshot(f"unknown snapshot {snapshot!r}: latest known: {listed}")
    tables = warehouse.materialise_snapshot(con, snapshot)
    run = warehouse.first_row(con, "SELECT run_id FROM runs WHERE run_seq = ?", [seq])
    return State(tables, snapshot, seq, run[0] if run else None, "snapshot")


def _as_of_state(con: duckdb.DuckDBPyConnection, moment: dt.datetime) -> State:
    """The tables after the last completed run started at or before ``moment``."""
    run = warehouse.first_row(
        con,
        """SELECT run_seq, run_id, snapshot_id FROM runs
           WHERE status = 'completed' AND started_at <= ? ORDER BY run_seq DESC LIMIT 1""",
        [moment],
    )
    if run is None:
        raise _no_run_by(con, moment)
    seq, run_id, snapshot = run
    tables = history.tables_as_of(con, seq)
    if warehouse.content_hash(tables) != snapshot:
        raise PullError(f"run {run_id} (snapshot {snapshot}) cannot be rebuilt from history")
    return State(tables, snapshot, seq, run_id, f"as_of {moment.isoformat()}")


def _no_run_by(con: duckdb.DuckDBPyConnection, moment: dt.datetime) -> UnknownSnapshot:
    """Why no state exists at ``moment``: before the first run, or no run had completed."""
    row = warehouse.first_row(con, "SELECT min(started_at) FROM runs")
    first = row[0] if row else None
    if first is None or moment < first:
        since = f"the first run started {first:%Y-%m-%d %H:%M:%S} UTC" if first else "none yet"
        return UnknownSnapshot(f"as_of {moment:%Y-%m-%d %H:%M:%S} is before any run ({since})")
    return UnknownSnapshot(f"no run had completed by {moment:%Y-%m-%d %H:%M:%S} UTC")


def parse_as_of(value: Moment) -> dt.datetime:
    """A moment in naive UTC, as ``runs.started_at``; a bare date means the end of that day."""
    if isinstance(value, str):
        value = _parse_iso(value)
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time.max)
    raise PullError(f"as_of must be a date or date-time, got {value!r}")


def _parse_iso(text: str) -> dt.date | dt.datetime:
    """An ISO date or date-time (with or without an offset); anything else is an error."""
    for parse in (dt.date.fromisoformat, dt.datetime.fromisoformat):
        try:
            return parse(text.strip())
        except ValueError:
            continue
    raise PullError(
        f"as_of {text!r} is not an ISO date or date-time (2026-11-27, 2026-11-27T03:00Z)"
    )

"""What analysts read: a read-only copy of the warehouse, replaced after each committed night.

DuckDB allows one read-write process or many read-only ones on a file, never both: an
analyst holding the live warehouse open made the night fail, and a night running made
every pull, ``status`` and read-only connection wait (design invariant 10). So the writer
publishes a copy, ``<workspace>/published/warehouse.duckdb``, once its work is committed
(a night, a refit, a quality run, a key rotation), and every reader opens that copy.

The copy is a file copy taken after a ``CHECKPOINT`` while the writer still holds the
live file (nothing can change under it), checked by opening it, then renamed over the
previous copy. A reader that has the previous copy open keeps reading it (a rename does
not touch an open file on POSIX); the next reader opens the new one. A night that fails
or is killed publishes nothing: readers see the last committed state, never a half one.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb

from cohortflow.errors import CohortflowError
from transforms.warehouse.connection import connect, first_row
from transforms.warehouse.snapshot import snapshot_id

PARTIAL_SUFFIX = ".partial"


class PublicationFailed(CohortflowError):
    """The copy did not read back as the live warehouse: the previous copy stays."""


def published_path(warehouse: Path) -> Path:
    """Where the read-only copy of ``warehouse`` lives (what analysts are told to open)."""
    return warehouse.parent / "published" / warehouse.name


def publish_read_copy(con: duckdb.DuckDBPyConnection, warehouse: Path) -> Path:
    """Copy the committed warehouse (``con``: the writer's open connection) to its
    published place, whole or not at all. Returns the published path."""
    target = published_path(warehouse)
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f".{target.name}.*{PARTIAL_SUFFIX}"):
        stale.unlink(missing_ok=True)  # a copy killed half-way: we are the one writer
    con.execute("CHECKPOINT")  # everything in the main file, nothing left in the WAL
    expected = snapshot_id(con)
    partial = target.with_name(f".{target.name}.{os.getpid()}{PARTIAL_SUFFIX}")
    try:
        shutil.copyfile(warehouse, partial)
        with partial.open("rb") as handle:
            os.fsync(handle.fileno())
        _check_copy(partial, expected)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def _check_copy(path: Path, expected: str) -> None:
    copy = duckdb.connect(str(path), read_only=True)
    try:
        found = snapshot_id(copy)
    finally:
        copy.close()
    if found != expected:
        raise PublicationFailed(
            f"the copy of the warehouse reads as snapshot {found}, not {expected}: "
            "the previous published copy is kept"
        )


@dataclass(frozen=True)
class ReadSource:
    """Which file a reader opened, and the last run committed in it."""

    path: Path
    published: bool  # False: the live warehouse (no copy published yet)
    run_id: str | None
    snapshot_id: str | None
    finished_at: dt.datetime | None

    def describe(self) -> str:
        """One line for a reader: which state it is reading."""
        what = "published copy" if self.published else "live warehouse"
        if self.run_id is None:
            return f"{what} {self.path} (no run committed yet)"
        when = f", {self.finished_at:%Y-%m-%d %H:%M} UTC" if self.finished_at else ""
        return f"{what} {self.path}: snapshot {self.snapshot_id} of run {self.run_id}{when}"


def open_for_reading(
    warehouse: Path, *, memory_limit: str = "1GB"
) -> tuple[duckdb.DuckDBPyConnection, ReadSource]:
    """A read-only connection to what readers read: the published copy, else (a warehouse
    that has not published one yet) the live file, which a running night may hold."""
    copy = published_path(warehouse)
    path = copy if copy.exists() else warehouse
    if not path.exists():
        raise CohortflowError(f"no warehouse at {warehouse}: nothing has run yet")
    con = connect(path, read_only=True, memory_limit=memory_limit)
    return con, _source(con, path, published=path == copy)


def _source(con: duckdb.DuckDBPyConnection, path: Path, *, published: bool) -> ReadSource:
    row = first_row(
        con,
        "SELECT run_id, snapshot_id, finished_at FROM runs "
        "WHERE status IN ('completed', 'partial') AND snapshot_id IS NOT NULL "
        "ORDER BY finished_at DESC LIMIT 1",
    )
    run_id, snapshot, finished = row if row else (None, None, None)
    return ReadSource(path, published, run_id, snapshot, finished)

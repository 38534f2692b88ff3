"""Snapshot ids: a content hash of the harmonised values, and any past snapshot rebuilt."""

from __future__ import annotations

import duckdb
import polars as pl

from cohortflow.errors import CohortflowError
from schemas.forms import FORMS
from transforms.warehouse import digest, history
from transforms.warehouse.connection import scalar


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
    keeps up to date (``transforms/warehouse/digest.py``): no pass over the tables.

    A read-only connection to a warehouse that has no digests yet hashes the tables whole.
    """
    kept = digest.stored(con)
    if all(form.table in kept for form in FORMS.values()):
        return digest.snapshot_of(kept)
    return digest.snapshot_whole(con)


def snapshot_run_seq(con: duckdb.DuckDBPyConnection, snapshot: str) -> int | None:
    """The last run whose data was this snapshot (its state can be rebuilt from history)."""
    return scalar(
        con,
        "SELECT max(run_seq) FROM runs "
        "WHERE snapshot_id = ? AND status IN ('completed', 'partial')",
        [snapshot],
    )


def materialise_snapshot(con: duckdb.DuckDBPyConnection, snapshot: str) -> dict[str, pl.DataFrame]:
    """The harmonised tables exactly as they were at ``snapshot``; checked by its hash."""
    seq = snapshot_run_seq(con, snapshot)
    if seq is None:
        raise CohortflowError(f"unknown snapshot {snapshot!r}: see the runs table for known ids")
    tables = history.tables_as_of(con, seq)
    if content_hash(tables) != snapshot:
        raise CohortflowError(f"snapshot {snapshot} could not be rebuilt identically from history")
    return tables

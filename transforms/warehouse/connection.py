"""Opening the warehouse: one read-write process at a time, its tables created on first use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from cohortflow.locks import open_duckdb
from cohortflow.settings import memory_size
from schemas.forms import FORMS
from transforms.warehouse import ddl, digest


def connect(
    path: Path, *, read_only: bool = False, memory_limit: str = "1GB"
) -> duckdb.DuckDBPyConnection:
    """Open the warehouse (creating its tables); a clear error if another process holds it.

    ``memory_limit``: DuckDB's own (``Settings.duckdb_memory``), checked as a size and
    bound as a parameter, never spliced into SQL text.
    """
    memory_size(memory_limit)  # before the file is opened: a bad size is a ConfigError
    con = open_duckdb(path, read_only=read_only)
    # DuckDB keeps the blocks it scanned cached up to its limit (80 % of RAM by default):
    # a night over a million patients would hold several GB for nothing
    con.execute("SET memory_limit = ?", [memory_limit])
    if not read_only:
        con.execute(ddl.OPERATIONAL_DDL)
        con.execute(ddl.ADDED_COLUMNS_DDL)
        con.execute(ddl.HISTORY_DDL)
        con.execute(ddl.KEYS_DDL)
        for form in FORMS.values():
            con.execute(ddl.table_ddl(form))
            con.execute(ddl.history_ddl(form))
        _create_derived_state(con)
    return con


def _create_derived_state(con: duckdb.DuckDBPyConnection) -> None:
    """The tables that keep derived state up to date batch by batch: the form tables'
    digests (snapshot ids) and the patients whose views are stale.

    A warehouse made before they were kept gets its digests computed whole once, and its
    views rebuilt whole once (batches loaded before may have left them stale unnoticed).
    """
    tracked = scalar(
        con, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'views_stale'"
    )
    con.execute(ddl.DIGEST_DDL)
    con.execute(ddl.STALE_DDL)
    if not tracked:
        con.execute("DELETE FROM views_built")
    digest.ensure(con)


def first_row(con: duckdb.DuckDBPyConnection, sql: str, params=()) -> tuple | None:
    """The first row of a query, or None (the result is always consumed whole)."""
    rows = con.execute(sql, list(params)).fetchall()
    return rows[0] if rows else None


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params=()) -> Any:
    """The one value of a query that always returns one row (an aggregate)."""
    row = first_row(con, sql, params)
    if row is None:
        raise ValueError(f"no row from a query expected to return one: {sql}")
    return row[0]

"""Versioned harmonised tables: corrections supersede, history is kept, the past is queryable.

Each form table holds the current version of every natural key. Beside it,
``<table>_history`` holds every version with the run interval in which it was current
(``_valid_from``, ``_valid_to``: run sequence numbers; ``_valid_to`` null while current),
and ``changes`` holds one row per corrected value (old and new value, old and new file).
``as of`` a run, a table is the versions valid at the end of that run.

Rows missing from a later *full* export are never deleted: they are flagged in
``absent_rows`` for the data manager to query the centre.
"""

from __future__ import annotations

from collections import Counter

import duckdb
import polars as pl

from schemas.forms import FORMS, Form
from transforms.warehouse import digest, views


def value_columns(form: Form) -> list[str]:
    """Columns whose change is a correction (everything but the key and lineage)."""
    return ["centre_id", *[c for c in form.columns() if c not in ("patient_id", *form.key)]]


def _key_text(form: Form, alias: str) -> str:
    """A readable natural key, e.g. "month=3" (patient_key has its own column)."""
    parts = [f"'{k}=' || coalesce(CAST({alias}.{k} AS VARCHAR), '')" for k in form.key[1:]]
    return " || ', ' || ".join(parts) if parts else "''"


def apply_rows(
    con: duckdb.DuckDBPyConnection, form: Form, incoming: str, run_id: str, run_seq: int
) -> dict[str, dict[str, int]]:
    """Upsert the registered relation ``incoming`` into a form's table, keeping history.

    ``incoming`` may hold several files (``_file_hash``), whose natural keys must not
    overlap (files of different centres). Must run inside the caller's transaction, which
    then also holds the table's new digest and the patients whose views are stale.
    Returns rows_new, rows_changed, rows_same of each file, by file hash.
    """
    table, key = form.table, form.key
    join = " AND ".join(f"i.{k} = c.{k}" for k in key)
    differs = " OR ".join(f"i.{c} IS DISTINCT FROM c.{c}" for c in value_columns(form))
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE delta AS
            SELECT i.*, c.patient_key IS NULL AS _is_new, c._file_hash AS _old_file_hash,
                   {digest.row_md5(form, "i")} AS _new_md5,
                   CASE WHEN c.patient_key IS NOT NULL THEN {digest.row_md5(form, "c")}
                   END AS _old_md5
            FROM {incoming} i LEFT JOIN {table} c ON {join}
            WHERE c.patient_key IS NULL OR {differs}"""
    )
    # what derives from the table follows the change: its digest (the snapshot id) and
    # the patients whose analysis views must be rebuilt
    digest.apply_delta(con, form, "delta")
    views.mark_stale(con, "delta")
    per_file = con.execute(
        f"""SELECT i._file_hash, count(*),
                   coalesce(any_value(d.new), 0), coalesce(any_value(d.changed), 0)
            FROM {incoming} i LEFT JOIN (
                SELECT _file_hash, count(*) FILTER (_is_new) AS new,
                       count(*) FILTER (NOT _is_new) AS changed
                FROM delta GROUP BY 1) d USING (_file_hash)
            GROUP BY 1"""
    ).fetchall()
    counts = {
        h: {"rows_new": new, "rows_changed": changed, "rows_same": total - new - changed}
        for h, total, new, changed in per_file
    }
    changed = sum(c["rows_changed"] for c in counts.values())
    if changed:  # corrections: record each changed value, close the superseded versions
        _record_changes(con, form, run_id, run_seq)
        close = " AND ".join(f"h.{k} = d.{k}" for k in key)
        con.execute(
            f"""UPDATE {table}_history h SET _valid_to = ?
                FROM delta d WHERE {close} AND h._valid_to IS NULL AND NOT d._is_new""",
            [run_seq],
        )
    columns = ", ".join(_table_columns(con, table))
    con.execute(
        f"""INSERT INTO {table}_history ({columns}, _valid_from, _valid_to)
            SELECT {columns}, ?, NULL FROM delta""",
        [run_seq],
    )
    if changed:  # the current version of a corrected key replaces the old one
        con.execute(f"DELETE FROM {table} c USING delta i WHERE {join} AND NOT i._is_new")
    con.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM delta")
    con.execute("DROP TABLE delta")
    return counts


def _record_changes(con, form: Form, run_id: str, run_seq: int) -> None:
    """One row per corrected value of an existing key (one statement for all columns)."""
    table, key = form.table, form.key
    join = " AND ".join(f"d.{k} = c.{k}" for k in key)
    per_column = " UNION ALL ".join(
        f"""SELECT '{table}', d.patient_key, {_key_text(form, "d")}, '{column}',
                   CAST(c.{column} AS VARCHAR), CAST(d.{column} AS VARCHAR),
                   c._file_hash, d._file_hash, $run_id, $run_seq
            FROM delta d JOIN {table} c ON {join}
            WHERE NOT d._is_new AND d.{column} IS DISTINCT FROM c.{column}"""
        for column in value_columns(form)
    )
    con.execute(f"INSERT INTO changes {per_column}", {"run_id": run_id, "run_seq": run_seq})


def flag_absent_rows(
    con: duckdb.DuckDBPyConnection,
    form: Form,
    full_exports: str,
    present: list[str],
    run_id: str,
) -> dict[str, int]:
    """Flag current rows that a centre's full export no longer contains.

    ``full_exports``: (centre_id, file_hash) of full exports, at most one per centre;
    ``present``: relations holding, between them, the natural keys of every record of
    those files. Returns counts by file hash.
    """
    join = " AND ".join(f"p.{k} = c.{k}" for k in form.key)
    missing = " AND ".join(f"NOT EXISTS (SELECT 1 FROM {r} p WHERE {join})" for r in present)
    flagged = con.execute(
        f"""INSERT INTO absent_rows
            SELECT '{form.table}', c.patient_key, {_key_text(form, "c")}, c._file_hash,
                   f.file_hash, ?
            FROM {form.table} c JOIN {full_exports} f ON c.centre_id = f.centre_id
            WHERE c._file_hash <> f.file_hash
              AND {missing}
            RETURNING absent_from_file_hash""",
        [run_id],
    ).fetchall()
    counted = Counter(file_hash for (file_hash,) in flagged)
    files = con.execute(f"SELECT file_hash FROM {full_exports}").fetchall()
    return {file_hash: counted[file_hash] for (file_hash,) in files}


_COLUMNS: dict[str, list[str]] = {}


def _table_columns(con, table: str) -> list[str]:
    """A table's columns (fixed by the DDL of this code: looked up once per process)."""
    if table not in _COLUMNS:
        _COLUMNS[table] = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
    return _COLUMNS[table]


def table_as_of(con: duckdb.DuckDBPyConnection, form: Form, run_seq: int) -> pl.DataFrame:
    """A form's table as it stood at the end of run ``run_seq``, in natural-key order."""
    columns = ", ".join(_table_columns(con, form.table))
    return con.sql(
        f"""SELECT {columns} FROM {form.table}_history
            WHERE _valid_from <= ? AND (_valid_to IS NULL OR _valid_to > ?)
            ORDER BY {", ".join(form.key)}""",
        params=[run_seq, run_seq],
    ).pl()


def tables_as_of(con: duckdb.DuckDBPyConnection, run_seq: int) -> dict[str, pl.DataFrame]:
    return {form.table: table_as_of(con, form, run_seq) for form in FORMS.values()}

"""Snapshot ids, kept up to date batch by batch instead of rehashing the warehouse.

A snapshot id hashes each form table's row count and the XOR of its rows' md5 (values
only, lineage excluded: the same data gives the same id, whatever files or runs brought
it). A XOR can be updated from a change alone: a batch XORs in the md5 of each row it
writes and XORs out the md5 of each version it supersedes. ``table_digests`` holds
(row_count, row_xor) per form table, updated in the transaction that changes the table,
so an incremental night costs what it loads, not what the warehouse holds (a full pass
over a million patients' 14.7 million rows takes seconds; the update, milliseconds).

``verify`` recomputes every digest whole and names the tables whose stored digest
differs (a table edited by hand outside cohortflow).
"""

from __future__ import annotations

import hashlib

import duckdb

from schemas.forms import DUCKDB_TYPES, FORMS, Form


def row_md5(form: Form, alias: str) -> str:
    """SQL for the md5 (a 128-bit number) of a row's values, as the warehouse stores them.

    Each value is cast to its column's stored type first, so that a row hashes the same
    in an incoming frame as in the table; a null is chr(0), apart from any text.
    """
    types = {"patient_key": "VARCHAR", "centre_id": "VARCHAR"} | {
        name: DUCKDB_TYPES[dtype] for name, dtype in form.columns().items() if name != "patient_id"
    }
    values = ", ".join(
        f"coalesce(CAST(CAST({alias}.{name} AS {kind}) AS VARCHAR), chr(0))"
        for name, kind in types.items()
    )
    return f"md5_number(concat_ws(chr(31), {values}))"


def whole(con: duckdb.DuckDBPyConnection, form: Form) -> tuple[int, int]:
    """(row count, XOR of row md5s) of a form's table, by one pass over it."""
    rows, xor = con.execute(
        f"SELECT count(*), bit_xor({row_md5(form, 't')}) FROM {form.table} t"
    ).fetchall()[0]
    return rows, xor or 0


def stored(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[int, int]]:
    """The digests kept in the warehouse, by table (empty before ``ensure``, or in a
    warehouse from before digests were kept, opened read-only)."""
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'table_digests'"
    ).fetchall()[0][0]
    if not exists:
        return {}
    rows = con.execute("SELECT table_name, row_count, row_xor FROM table_digests").fetchall()
    return {table: (count, xor) for table, count, xor in rows}


def ensure(con: duckdb.DuckDBPyConnection) -> None:
    """Give every form table a stored digest (computed whole once: a new table is empty,
    a table of a warehouse made before digests were kept is hashed on first opening)."""
    have = stored(con)
    for form in FORMS.values():
        if form.table not in have:
            con.execute(
                "INSERT INTO table_digests VALUES (?, ?, ?::UHUGEINT)",
                [form.table, *_as_params(whole(con, form))],
            )


def apply_delta(con: duckdb.DuckDBPyConnection, form: Form, delta: str) -> None:
    """Fold a batch's change into its table's digest (inside the batch's transaction).

    ``delta``: one row per row written, with ``_is_new``, ``_new_md5`` (the written
    version) and ``_old_md5`` (the version it supersedes; null for a new key).
    """
    con.execute(
        f"""UPDATE table_digests SET row_count = row_count + d.added,
                                     row_xor = xor(row_xor, d.flipped)
            FROM (SELECT count(*) FILTER (_is_new) AS added,
                         coalesce(bit_xor(xor(_new_md5, coalesce(_old_md5, 0::UHUGEINT))),
                                  0::UHUGEINT) AS flipped
                  FROM {delta}) d
            WHERE table_name = ?""",
        [form.table],
    )


def snapshot_of(digests: dict[str, tuple[int, int]]) -> str:
    """The snapshot id of the form tables' digests."""
    digest = hashlib.sha256()
    for form in FORMS.values():
        rows, xor = digests[form.table]
        digest.update(f"{form.table}:{rows}:{xor}\n".encode())
    return digest.hexdigest()[:16]


def snapshot_whole(con: duckdb.DuckDBPyConnection) -> str:
    """The snapshot id by a full pass over each form table (or relation of that name)."""
    return snapshot_of({form.table: whole(con, form) for form in FORMS.values()})


def verify(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Form tables whose stored digest differs from a full recomputation (none: all well)."""
    have = stored(con)
    return [f.table for f in FORMS.values() if have.get(f.table) != whole(con, f)]


def _as_params(digest: tuple[int, int]) -> list:
    rows, xor = digest
    return [rows, str(xor)]  # a 128-bit integer passes as text, cast in SQL

"""The analysis views kept in the warehouse (``analysis_*`` tables), brought up to date
after each change: the pure builders are ``transforms.derived.views``; this module
decides which patients to rebuild and swaps their rows in with the snapshot id.
"""

from __future__ import annotations

from collections.abc import Iterable

import duckdb
import polars as pl

from transforms.derived.views import build_views
from transforms.warehouse.connection import first_row, scalar
from transforms.warehouse.tables import current_tables


def refresh_views(con: duckdb.DuckDBPyConnection, snapshot: str, *, whole: bool = False) -> bool:
    """Bring the analysis views (``analysis_*`` tables) up to ``snapshot``, the current one.

    Only the patients whose rows changed since the views were built are rebuilt (the views
    are per patient: ``views_stale`` lists them, written with each batch). A first build,
    more than ``PATIENTS_PER_VIEW_CHUNK`` stale patients, a change no batch recorded, or
    ``whole`` rebuild them all, in chunks of patients. Returns whether anything was rebuilt.
    """
    built = first_row(con, "SELECT snapshot_id FROM views_built")
    stale = scalar(con, "SELECT count(DISTINCT patient_key) FROM views_stale")
    if built and built[0] == snapshot and not whole:
        if stale:  # changed and changed back: the views of this content are already there
            replace_stale_patients(con, {}, snapshot)
        return False
    if built and 0 < stale <= PATIENTS_PER_VIEW_CHUNK and not whole:
        stale_rows = current_tables(con, stale_only=True)
        replace_stale_patients(con, build_views(stale_rows), snapshot)
        return True
    patients = scalar(con, "SELECT count(*) FROM patients")
    chunks = (build_views(current_tables(con, keys)) for keys in _key_ranges(patients))
    materialise_view_chunks(con, chunks, snapshot)
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


def mark_stale(con: duckdb.DuckDBPyConnection, changed: str) -> None:
    """Note the patients of the relation ``changed`` (rows just written to a form table):
    their views must be rebuilt. Called inside the transaction that writes the rows."""
    con.execute(f"INSERT INTO views_stale SELECT DISTINCT patient_key FROM {changed}")


def replace_stale_patients(
    con: duckdb.DuckDBPyConnection, views: dict[str, pl.DataFrame], snapshot: str
) -> None:
    """Swap in the views of the stale patients (built from their current rows) and record
    the snapshot, in one transaction.

    The views are per patient, so replacing a patient's rows in every view equals the
    whole build for that patient; the other patients' rows are unchanged.
    """
    con.execute("BEGIN TRANSACTION")
    try:
        for name, frame in views.items():
            con.register("view_rows", frame)
            con.execute(
                f"DELETE FROM {name} WHERE patient_key IN (SELECT patient_key FROM views_stale)"
            )
            con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM view_rows")
            con.unregister("view_rows")
        _record_built(con, snapshot)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _record_built(con: duckdb.DuckDBPyConnection, snapshot: str) -> None:
    """The views now reflect ``snapshot``: no patient's views are stale."""
    con.execute("DELETE FROM views_built")
    con.execute("INSERT INTO views_built VALUES (?)", [snapshot])
    con.execute("DELETE FROM views_stale")


def materialise_views(
    con: duckdb.DuckDBPyConnection, views: dict[str, pl.DataFrame], snapshot: str
) -> None:
    """Replace the view tables and record their snapshot in one transaction."""
    materialise_view_chunks(con, [views], snapshot)


def materialise_view_chunks(
    con: duckdb.DuckDBPyConnection, chunks: Iterable[dict[str, pl.DataFrame]], snapshot: str
) -> None:
    """Replace the view tables by the concatenated chunks (views of disjoint sets of
    patients, built one at a time to bound memory) and record their snapshot.

    The chunks are written to ``<view>__building`` tables, each committed (a transaction
    holding a million patients' views would hold them in memory); then one transaction
    swaps them in and records the snapshot. Readers never see views of two snapshots
    mixed, nor views without their snapshot.
    """
    names: list[str] = []
    for i, views in enumerate(chunks):
        for name, frame in views.items():
            con.register("view_rows", frame)
            if i == 0:
                names.append(name)
                con.execute(f"CREATE OR REPLACE TABLE {name}__building AS SELECT * FROM view_rows")
            else:
                con.execute(f"INSERT INTO {name}__building BY NAME SELECT * FROM view_rows")
            con.unregister("view_rows")
        del views  # before the next chunk is built
    con.execute("BEGIN TRANSACTION")
    try:
        for name in names:
            con.execute(f"DROP TABLE IF EXISTS {name}")
            con.execute(f"ALTER TABLE {name}__building RENAME TO {name}")
        _record_built(con, snapshot)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise

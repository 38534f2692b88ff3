"""Reading the warehouse: harmonised tables as they stand, analysis views as models read them."""

from __future__ import annotations

import duckdb
import polars as pl

from schemas.forms import FORMS, VIEW_KEYS


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

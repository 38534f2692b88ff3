"""The quarantine as a data manager reads it: this run's rejected values, and their reasons."""

from __future__ import annotations

from pathlib import Path

import duckdb


def write_run_quarantine(con: duckdb.DuckDBPyConnection, run_id: str, path: Path) -> int:
    """This run's quarantined rows as a CSV a data manager can open; returns the row count."""
    rows = con.sql(
        """SELECT centre_id, file_name, source_row, source_column, column_name, rule, value,
                  message, patient_key
           FROM quarantine WHERE run_id = ? ORDER BY centre_id, file_name, source_row""",
        params=[run_id],
    ).pl()
    if rows.height:
        path.parent.mkdir(parents=True, exist_ok=True)
        rows.write_csv(path)
    return rows.height


def quarantine_reasons(con: duckdb.DuckDBPyConnection, run_id: str) -> list[tuple[str, str, int]]:
    """This run's quarantine entries counted by form.column and rule, most frequent first."""
    return con.execute(
        """SELECT form || '.' || coalesce(column_name, '') AS field, rule, count(*) AS n
           FROM quarantine WHERE run_id = ?
           GROUP BY ALL ORDER BY n DESC, field, rule""",
        [run_id],
    ).fetchall()

"""The quarantine as a data manager reads it: this run's rejected values, and their reasons."""

from __future__ import annotations

from pathlib import Path

import duckdb

from transforms.staging.spreadsheet import write_csv_for_people


def write_run_quarantine(con: duckdb.DuckDBPyConnection, run_id: str, path: Path) -> int:
    """This run's quarantined rows as a CSV a data manager can open; returns the row count.

    Spreadsheet-safe (a value such as ``=HYPERLINK(...)`` from an export is shown, never
    run) and written whole or not at all.
    """
    rows = con.sql(
        """SELECT centre_id, file_name, source_row, source_column, column_name, rule, value,
                  message, patient_key
           FROM quarantine WHERE run_id = ? ORDER BY centre_id, file_name, source_row""",
        params=[run_id],
    ).pl()
    if rows.height:
        write_csv_for_people(rows, path)
    return rows.height


def quarantine_reasons(con: duckdb.DuckDBPyConnection, run_id: str) -> list[tuple[str, str, int]]:
    """This run's quarantine entries counted by form.column and rule, most frequent first."""
    return con.execute(
        """SELECT form || '.' || coalesce(column_name, '') AS field, rule, count(*) AS n
           FROM quarantine WHERE run_id = ?
           GROUP BY ALL ORDER BY n DESC, field, rule""",
        [run_id],
    ).fetchall()

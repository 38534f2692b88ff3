"""What the results report reads: a published results folder, and the cohort's views.

The results come from ``artifacts/<run>/``: the manifest and every table it lists, read
as they are (an analysis that adds a column or a table is shown, not refused). The
cohort (Table 1, the NPRS curve) comes from the warehouse's analysis views through a
read-only use of a DuckDB connection: the night's own connection when the fit step writes
the report, or the published copy (``transforms.warehouse.open_for_reading``) for anyone
regenerating it. Both must be at the manifest's snapshot, or the report is refused: its
tables and its curves would describe different data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from cohortflow.errors import CohortflowError
from transforms.warehouse import first_row


class ReportError(CohortflowError):
    """The report cannot be written from these inputs (the message says why)."""


@dataclass(frozen=True)
class Results:
    """One published results folder: its manifest and its tables by name."""

    folder: Path
    manifest: dict
    tables: dict[str, pl.DataFrame]

    @property
    def snapshot_id(self) -> str:
        return self.manifest.get("snapshot_id", "")

    @property
    def specification(self) -> dict:
        return self.manifest.get("specification", {})

    def table(self, name: str) -> pl.DataFrame | None:
        """The table, or None when this run did not publish it."""
        return self.tables.get(name)

    def named(self, prefix: str) -> dict[str, pl.DataFrame]:
        """The tables whose names start with ``prefix``, in the manifest's order."""
        return {name: frame for name, frame in self.tables.items() if name.startswith(prefix)}


@dataclass(frozen=True)
class Cohort:
    """The analysis views the report describes directly (not through a model)."""

    patients: pl.DataFrame  # analysis_patients: one row per included patient
    months: pl.DataFrame  # analysis_patient_months: patient_key, month, nprs
    snapshot_id: str


def read_results(folder: Path) -> Results:
    """The manifest and every parquet table it lists (a listed file missing is an error)."""
    manifest_path = folder / "manifest.json"
    if not manifest_path.exists():
        raise ReportError(f"no manifest.json in {folder}: not a published results folder")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    tables = {}
    for name, entry in manifest.get("files", {}).items():
        path = folder / entry.get("file", f"{name}.parquet")
        if not path.exists():
            raise ReportError(f"{path.name} is listed in {manifest_path} but missing")
        tables[name] = pl.read_parquet(path)
    return Results(folder, manifest, tables)


def read_cohort(con: duckdb.DuckDBPyConnection, snapshot_id: str) -> Cohort:
    """The patients and their monthly NPRS, from views built at ``snapshot_id``."""
    built = first_row(con, "SELECT snapshot_id FROM views_built")
    views_at = built[0] if built else None
    if views_at != snapshot_id:
        raise ReportError(
            f"the warehouse's analysis views are at snapshot {views_at}, the results at "
            f"{snapshot_id}: open the warehouse those results were fitted on"
        )
    patients = con.sql("SELECT * FROM analysis_patients ORDER BY patient_key").pl()
    months = con.sql(
        "SELECT patient_key, month, nprs FROM analysis_patient_months ORDER BY patient_key, month"
    ).pl()
    return Cohort(patients, months, snapshot_id)

"""Publish model results as tidy parquet files with a manifest tying them to their inputs.

``artifacts/<run_id>/<name>.parquet`` plus ``manifest.json``: snapshot id, code version,
package versions, model specification, row counts and creation time (invariant 5).
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from importlib import metadata
from pathlib import Path

import polars as pl

import cohortflow

PACKAGES = ("cohortflow", "polars", "duckdb", "pandera", "statsmodels", "numpy", "scipy", "prefect")


def code_version() -> str:
    """The git commit when running from a checkout (with '+dirty' for local edits)."""
    root = Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=5,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return f"cohortflow {cohortflow.__version__}"
    return f"{rev}+dirty" if dirty else rev


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def publish_results(
    out_dir: Path,
    tables: dict[str, pl.DataFrame],
    *,
    run_id: str,
    snapshot_id: str,
    specification: dict,
) -> Path:
    """Write each table as ``<name>.parquet`` and a manifest; returns the manifest path.

    Files are written under a temporary name and renamed, so a reader never sees half a
    file; the manifest is written last, so its presence means the set is complete.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, table in tables.items():
        path = out_dir / f"{name}.parquet"
        tmp = path.with_suffix(".parquet.tmp")
        table.write_parquet(tmp)
        tmp.replace(path)
        files[name] = {"file": path.name, "rows": table.height, "columns": table.columns}
    manifest = {
        "run_id": run_id,
        "snapshot_id": snapshot_id,
        "code_version": code_version(),
        "packages": package_versions(),
        "specification": specification,
        "files": files,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    path = out_dir / "manifest.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=2, default=str), encoding="utf-8")
    tmp.replace(path)
    return path

"""Publish model results as tidy parquet files with a manifest tying them to their inputs.

``artifacts/<run_id>/<name>.parquet`` plus ``manifest.json``: snapshot id, code version,
package versions, model specification, row counts and creation time (invariant 5). Each
table also as ``<name>.csv`` beside its parquet (floats at a double's precision, for R,
Stata or a spreadsheet without an Arrow reader), and each parquet carries its columns'
labels, units and descriptions in its schema (``models/result_columns.py``).

A run's folder appears whole or not at all: it is built as ``.<run_id>.partial`` beside
its place (same filesystem), manifest last, then renamed into place. A crash leaves only
that hidden folder and its ``.owner`` file (host and pid); the next publish removes the
partial folders whose process is gone.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import socket
import subprocess
from importlib import metadata
from pathlib import Path

import polars as pl

import cohortflow
from models.result_columns import result_docs
from transforms.delivery.files import write_csv, write_parquet
from transforms.warehouse.runs import process_alive

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
    carried: dict[str, Path] | None = None,
) -> Path:
    """Write each table as ``<name>.parquet`` and a manifest; returns the manifest path.

    Everything is written into a partial folder, the manifest last, then the folder is
    renamed to ``out_dir``: a reader (or a rerun) never sees half a set of results.
    ``carried``: tables republished as they are (an earlier publication's files, linked
    or copied byte for byte: models.policy's carried-over results).
    """
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    remove_dead_partials(out_dir.parent)
    partial = claim_partial(out_dir)
    try:
        files = _carry_files(partial, carried or {})
        _write_set(
            partial, tables, run_id=run_id, snapshot_id=snapshot_id, spec=specification, files=files
        )
        if out_dir.exists():  # the same run published again: the new set replaces the old
            shutil.rmtree(out_dir)
        partial.rename(out_dir)
    except BaseException:  # an error (not a kill) cleans up at once
        shutil.rmtree(partial, ignore_errors=True)
        raise
    finally:
        _owner_file(partial).unlink(missing_ok=True)
    return out_dir / "manifest.json"


def withdraw_unpublished(artifacts: Path, runs: set[str]) -> list[str]:
    """Delete the results folders of ``runs`` (runs that never committed: a process killed
    after its folder was renamed into place, before its run was closed). Their snapshot
    is refitted and published by a committed run; two folders for it would mislead."""
    withdrawn = [run for run in sorted(runs) if (artifacts / run).is_dir()]
    for run in withdrawn:
        shutil.rmtree(artifacts / run)
    return withdrawn


def _carry_files(folder: Path, carried: dict[str, Path]) -> dict[str, dict]:
    """Earlier files put in the new set unchanged (a hard link, else a copy), with their
    manifest entries read from the parquet footer (no data read)."""
    import pyarrow.parquet as pq  # the footer only

    files = {}
    for name, source in carried.items():
        target = folder / f"{name}.parquet"
        try:
            os.link(source, target)
        except OSError:  # another filesystem, or links not allowed
            shutil.copyfile(source, target)
        meta = pq.read_metadata(target)
        files[name] = {"file": target.name, "rows": meta.num_rows, "columns": meta.schema.names}
    return files


def _write_set(
    folder: Path,
    tables: dict[str, pl.DataFrame],
    *,
    run_id: str,
    snapshot_id: str,
    spec: dict,
    files: dict[str, dict] | None = None,
) -> None:
    """The parquet files, then the manifest that says they are all there."""
    files = dict(files or {})
    for name, table in tables.items():
        path = folder / f"{name}.parquet"
        write_parquet(table, path, result_docs(table.columns))
        write_csv(table, path.with_suffix(".csv"))
        files[name] = {
            "file": path.name,
            "csv": f"{name}.csv",
            "rows": table.height,
            "columns": table.columns,
        }
    manifest = {
        "run_id": run_id,
        "snapshot_id": snapshot_id,
        "code_version": code_version(),
        "packages": package_versions(),
        "specification": spec,
        "files": files,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    text = json.dumps(manifest, indent=2, default=str)
    (folder / "manifest.json").write_text(text, encoding="utf-8")


PARTIAL = ".partial"


def _owner_file(partial: Path) -> Path:
    return partial.with_name(partial.name + ".owner")


def claim_partial(out_dir: Path) -> Path:
    """A fresh ``.<run>.partial`` folder beside ``out_dir``, its owner recorded first.

    The owner (host and pid) sits beside the folder, not in it, so that the published
    folder holds exactly the results and the manifest.
    """
    partial = out_dir.with_name(f".{out_dir.name}{PARTIAL}")
    _owner_file(partial).write_text(f"{socket.gethostname()} {os.getpid()}", encoding="utf-8")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    return partial


def remove_dead_partials(folder: Path) -> list[Path]:
    """Remove the partial folders left by a publish whose process is gone.

    A folder whose owner ran on another host, or is still alive here, is left alone; one
    without an owner file is older than owner files or half-claimed, and is removed.
    """
    removed = []
    for partial in sorted(folder.glob(f".*{PARTIAL}")):
        if partial.is_dir() and not _owner_alive(_owner_file(partial)):
            shutil.rmtree(partial, ignore_errors=True)
            _owner_file(partial).unlink(missing_ok=True)
            removed.append(partial)
    return removed


def _owner_alive(owner: Path) -> bool:
    try:
        host, pid = owner.read_text(encoding="utf-8").split()
    except (OSError, ValueError):
        return False
    if host != socket.gethostname():
        return True  # cannot tell from here: never remove another host's work
    return int(pid) == os.getpid() or process_alive(int(pid))

"""What a command can answer before Prefect starts (a local server: 3 s warm, 8 s cold).

* ``nothing_to_run``: the inbox (through its content-hash cache) and the mapping files
  are those of the last clean night, and (for ``run``) the models are current: the night
  would do nothing (``transforms.pending``).
* ``nothing_to_refit``: the last committed run's snapshot is published and the refit
  policy (``models.policy``) has nothing due. Reads the live warehouse's ``runs`` and the
  last manifest with DuckDB and json only, so that ``cohortflow fit`` answers in about a
  second.

``importing`` gives a command's heavy imports to do while the Prefect server starts.

Both shortcuts are called with the workspace's writer lock held: no night can change the warehouse
while they read it. Any doubt (an older warehouse, a run left open) means "there is work":
the flow then decides as it always did.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import duckdb

from cohortflow.settings import Settings
from models import policy


def _read_only(settings: Settings) -> duckdb.DuckDBPyConnection | None:
    if not settings.warehouse.exists():
        return None
    try:
        return duckdb.connect(str(settings.warehouse), read_only=True)
    except duckdb.Error:  # held by another process: the usual path says so in one line
        return None


def nothing_to_refit(settings: Settings) -> str | None:
    """Why a refit has nothing to do now, or None when it has (or cannot tell)."""
    con = _read_only(settings)
    if con is None:
        return None
    try:
        snapshot = committed_snapshot(con)
        if snapshot is None or refit_due(con, settings.artifacts, snapshot):
            return None
    finally:
        con.close()
    return f"Snapshot {snapshot} is already published; --force refits it anyway."


def committed_snapshot(con: duckdb.DuckDBPyConnection) -> str | None:
    """The warehouse's snapshot as the last run that could change it left it (a failed
    or completed refit changes no table); None if a run is open or failed midway."""
    try:
        rows = con.execute(
            "SELECT kind, status, snapshot_id FROM runs ORDER BY run_seq DESC"
        ).fetchall()
    except duckdb.Error:
        return None
    for kind, status, snapshot in rows:
        if kind == "fit" and status == "failed":
            continue
        return snapshot if status in ("completed", "partial") else None
    return None


def refit_due(con: duckdb.DuckDBPyConnection, artifacts: Path, snapshot: str) -> bool:
    """Whether the refit policy has a model to fit on ``snapshot``."""
    row = con.execute(
        "SELECT run_id FROM runs WHERE models_published ORDER BY run_seq DESC LIMIT 1"
    ).fetchall()
    manifest = artifacts / row[0][0] / "manifest.json" if row else None
    if manifest is None or not manifest.exists():
        return True
    published = json.loads(manifest.read_text(encoding="utf-8"))
    return bool(policy.due(published, snapshot, dt.datetime.now(dt.UTC)))


def nothing_to_run(settings: Settings, *, fit_models: bool) -> str | None:
    """Why tonight's night has nothing to do, or None when it has (or cannot tell)."""
    from transforms.pending import night_inputs, unchanged_since

    if not settings.warehouse.exists():
        return None
    inputs = night_inputs(settings)  # reads only new or changed files; cache saved
    con = _read_only(settings)
    if con is None:
        return None
    try:
        last = unchanged_since(con, inputs.digest)
        if last is None or last.snapshot_id is None:
            return None
        if fit_models and refit_due(con, settings.artifacts, last.snapshot_id):
            return None
    finally:
        con.close()
    when = f" ({last.finished_at:%Y-%m-%d %H:%M} UTC)" if last.finished_at else ""
    models = "; models current" if fit_models else ""
    return (
        f"Nothing new since night {last.run_id}{when}: the {inputs.files} files of the inbox "
        f"and the mapping files are those it read{models}. Nothing was started."
    )


NIGHT_IMPORTS = (
    "models.suite",  # statsmodels, scipy
    "models.headline",
    "transforms.ingest",  # pandera
    "transforms.quality.run",
    "great_expectations",  # about 1.5 s
    "matplotlib.pyplot",  # the quality report's figures
    "flows.nightly",  # Prefect itself: its address is set by then (flows/server.py)
)
FIT_IMPORTS = ("models.suite", "models.headline", "flows.fit")
QUALITY_IMPORTS = ("transforms.quality.run", "great_expectations", "flows.quality")


def importing(*names: str) -> Callable[[], None]:
    """A command's heavy imports, to run while the Prefect server starts in its own
    process (``flows.server.prefect_api``'s ``meanwhile``): about 3 s of imports in the 3 s
    the server takes, instead of after it."""
    os.environ["GX_ANALYTICS_ENABLED"] = "false"  # as transforms.quality.gx: no network
    os.environ.setdefault("MPLBACKEND", "Agg")  # no display: the report draws to PNG

    def _import() -> None:
        for name in names:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - imported again where used, and reported there
                pass

    return _import

"""The model flow: refit the study's models on the warehouse and publish them.

Runs inside the nightly flow when the data changed, weekly regardless (prefect.yaml), and
on demand (``cohortflow fit``). An unchanged snapshot is not refitted unless forced.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from cohortflow.settings import Settings
from models.lmm import PrimaryResult
from models.primary import fit_and_publish_primary
from transforms import warehouse


@dataclass
class FitResult:
    run_id: str
    snapshot_id: str
    primary: PrimaryResult | None = None
    manifest: Path | None = None

    @property
    def published(self) -> bool:
        return self.manifest is not None


@task(name="fit-and-publish-models", cache_policy=NO_CACHE)  # input: a live connection
def fit_models_task(
    con: duckdb.DuckDBPyConnection, out_dir: Path, run_id: str, snapshot: str
) -> FitResult:
    primary, manifest = fit_and_publish_primary(
        warehouse.patient_months(con), out_dir, run_id=run_id, snapshot_id=snapshot
    )
    return FitResult(run_id, snapshot, primary, manifest)


@flow(name="cohortflow-fit", log_prints=True)
def fit(workspace: str | None = None, force: bool = False) -> FitResult:
    """Refit and publish the models on the warehouse's current snapshot.

    Args:
        workspace: the workspace folder (null: $COHORTFLOW_HOME, else ./cohortflow-data).
        force: refit even when this snapshot's results are already published.
    """
    settings = Settings.from_env(workspace)
    run_id = warehouse.new_run_id()
    con = warehouse.connect(settings.warehouse)
    try:
        warehouse.start_run(con, run_id)
        snapshot = warehouse.snapshot_id(con)
        warehouse.refresh_views(con, snapshot)
        result = FitResult(run_id, snapshot)
        if force or snapshot != warehouse.last_published_snapshot(con):
            result = fit_models_task(con, settings.artifacts / run_id, run_id, snapshot)
        else:
            print(f"snapshot {snapshot} is already published: nothing to refit (force=True to)")
        warehouse.finish_run(
            con,
            run_id,
            status="completed",
            snapshot_id=snapshot,
            models_published=result.published,
        )
    except BaseException as exc:
        warehouse.finish_run(con, run_id, status="failed", message=str(exc)[:500])
        raise
    finally:
        con.close()
    return result

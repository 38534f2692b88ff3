"""The data-quality flow: every check on the warehouse, stored per run and centre, reported.

Runs inside the nightly flow after the views are rebuilt, each morning on its own
(prefect.yaml), and on demand (``cohortflow quality``). Breached thresholds make the
flow end "Completed with warnings", never crash.
"""

from __future__ import annotations

import datetime as dt

import duckdb
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed, State

from cohortflow.locks import writer_lock
from cohortflow.settings import Settings
from flows.naming import new_run_name, run_name_or_new
from transforms import warehouse
from transforms.quality import QualityResult, run_quality
from transforms.staging.mapping import load_mappings_isolating


@task(name="data-quality", cache_policy=NO_CACHE)  # input: a live connection
def quality_task(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    run_id: str,
    centres: list[str],
    full: bool = False,
) -> QualityResult:
    result = run_quality(
        con,
        run_id=run_id,
        workspace_reports=settings.reports,
        now=dt.datetime.now(dt.UTC),
        expected_centres=centres,
        full=full,  # else only the centres whose data changed are checked again
    )
    create_markdown_artifact(
        key="data-quality-scorecard",
        markdown=result.markdown,
        description=f"Data quality of run {run_id}",
    )
    logger = get_run_logger()
    for line in result.night_lines():  # new breaches warn; what persists is one info line
        (logger.warning if line.startswith("NEW ") else logger.info)("data quality: %s", line)
    return result


@flow(name="cohortflow-quality", flow_run_name=new_run_name, log_prints=True)
def quality(
    workspace: str | None = None, settings: Settings | None = None, full: bool = False
) -> State:
    """Check the warehouse as it stands and write the report (reports/<run>/quality.html).

    Args:
        workspace: the workspace folder (null: $COHORTFLOW_HOME, else ./cohortflow-data).
        settings: in-process callers pass theirs; null: from the environment.
        full: check every centre (else those whose data changed since the last run).
    """
    settings = settings or Settings.from_env(workspace)
    with writer_lock(settings.workspace, "quality (flow)"):
        return _check(settings, full)


def _check(settings: Settings, full: bool = False) -> State:
    """The quality run itself, the workspace's writer lock held."""
    valid, broken = load_mappings_isolating(settings.centres_config)
    centres = sorted({*valid, *broken})  # a broken mapping's centre is still expected
    run_id = run_name_or_new()
    con = warehouse.connect(settings.warehouse, memory_limit=settings.duckdb_memory)
    try:
        warehouse.refresh_views(con, warehouse.snapshot_id(con))
        result = quality_task(con, settings, run_id, centres, full)
        warehouse.publish_read_copy(con, settings.warehouse)  # status reads the new scores
    finally:
        con.close()
    print(f"data-quality report: {result.report}")
    if result.breaches:
        return Completed(
            name="Completed with warnings",
            message=f"{len(result.breaches)} data-quality breaches",
            data=result,
        )
    return Completed(message="no data-quality threshold breached", data=result)

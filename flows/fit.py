"""The model flow: refit the study's models on the warehouse and publish them.

Runs inside the nightly flow when the data changed, weekly regardless (prefect.yaml), and
on demand (``cohortflow fit``). An unchanged snapshot is not refitted unless forced. Every
fit writes the living study report, ``reports/<run>/results.html`` (models.report).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from cohortflow import progress
from cohortflow.locks import writer_lock
from cohortflow.settings import Settings
from flows.naming import new_run_name, run_name_or_new
from models import headline, policy
from models.primary import PrimaryResult
from models.publish import withdraw_unpublished
from models.report import write_results_report
from models.suite import MODEL_INPUTS, StudyResults, fit_and_publish_all
from transforms import warehouse


@dataclass
class FitResult:
    run_id: str
    snapshot_id: str
    primary: PrimaryResult | None = None
    manifest: Path | None = None
    study: StudyResults | None = None
    report: Path | None = None  # reports/<run>/results.html
    report_error: str | None = None  # why the report could not be written (results stand)

    @property
    def published(self) -> bool:
        return self.manifest is not None


@task(name="fit-and-publish-models", cache_policy=NO_CACHE)  # input: a live connection
def fit_models_task(
    con: duckdb.DuckDBPyConnection,
    out_dir: Path,
    run_id: str,
    snapshot: str,
    report_dir: Path,
    force: bool = False,
) -> FitResult:
    withdrawn = withdraw_unpublished(out_dir.parent, warehouse.runs_never_published(con))
    for run in withdrawn:
        get_run_logger().warning("results of run %s withdrawn: that run never committed", run)
        (report_dir.parent / run / "results.html").unlink(missing_ok=True)  # and their report
    with progress.step("Reading the analysis views for the models"):
        views = warehouse.analysis_views(con, MODEL_INPUTS)
    study = fit_and_publish_all(
        views,
        out_dir,
        run_id=run_id,
        snapshot_id=snapshot,
        previous=last_manifest(con, out_dir.parent),
        force=force,  # else the refit policy (models.policy) picks what to refit
    )
    for step, error in study.failed.items():
        get_run_logger().warning("model %s not fitted: %s", step, error)
    report, report_error = _results_report(con, out_dir, report_dir / "results.html")
    _model_artifact(study, snapshot, report)
    return FitResult(run_id, snapshot, study.primary, study.manifest, study, report, report_error)


def _results_report(
    con: duckdb.DuckDBPyConnection, results: Path, out: Path
) -> tuple[Path | None, str | None]:
    """The living study report (models.report), from the results just published and the
    views they were fitted on. The results stand whatever happens to it: a report that
    cannot be written is logged, and the summaries name it, but fails nothing."""
    start = time.perf_counter()
    try:
        write_results_report(results, con, out)
    except Exception as exc:  # noqa: BLE001 - the published results stand; said, not hidden
        error = f"{type(exc).__name__}: {exc}"
        get_run_logger().error("results report not written: %s", error)
        return None, error
    get_run_logger().info("results report %s (%.1f s)", out, time.perf_counter() - start)
    return out, None


def _model_artifact(study: StudyResults, snapshot: str, report: Path | None) -> None:
    """The headline results (models.headline), the report and every published file."""
    blocks = [
        headline.primary_block(study.primary, snapshot),
        headline.secondary_block(study),
        headline.fit_times_block(study.fit_seconds),
    ]
    lines = [f"# Models (snapshot `{snapshot}`)"]
    for block in blocks:
        lines += ["", *headline.as_markdown(block)]
    for name in study.carried:  # the refit policy's (models/policy.py)
        entry = study.as_of[name]
        lines.append(f"- {name}: carried over, as of snapshot `{entry['snapshot_id']}`")
    if report is not None:  # a path, not a file:// link: it does nothing from the web UI
        lines += ["", f"Results report: `{report}` (on the machine that runs cohortflow)"]
    folder = study.manifest.parent
    lines += ["", f"Published files (`{folder}`):", ""]
    lines += [f"- `{p.name}`" for p in sorted(folder.iterdir())]  # file:// links do nothing
    lines += ["", "Open them on the machine that runs cohortflow, or `cohortflow pull` them."]
    create_markdown_artifact(key="models", markdown="\n".join(lines))


@flow(name="cohortflow-fit", flow_run_name=new_run_name, log_prints=True)
def fit(
    workspace: str | None = None, force: bool = False, settings: Settings | None = None
) -> FitResult:
    """Refit and publish the models on the warehouse's current snapshot.

    Args:
        workspace: the workspace folder (null: $COHORTFLOW_HOME, else ./cohortflow-data).
        force: refit even when this snapshot's results are already published.
        settings: in-process callers pass theirs; null: from the environment.
    """
    settings = settings or Settings.from_env(workspace)
    with writer_lock(settings.workspace, "fit (flow)"):
        return _refit(settings, force)


def _refit(settings: Settings, force: bool) -> FitResult:
    """The refit itself, the workspace's writer lock held."""
    run_id = run_name_or_new()
    con = warehouse.connect(settings.warehouse, memory_limit=settings.duckdb_memory)
    try:
        if settings.pseudonym_key is not None:  # none needed; a wrong one is refused
            warehouse.check_reader_key(con, settings.require_key())
        warehouse.start_run(con, run_id, kind="fit")
        snapshot = warehouse.snapshot_id(con)
        warehouse.refresh_views(con, snapshot)
        result = FitResult(run_id, snapshot)
        manifest = last_manifest(con, settings.artifacts)
        last = json.loads(manifest.read_text()) if manifest else None
        if force or policy.due(last, snapshot, dt.datetime.now(dt.UTC)):
            result = fit_models_task(
                con,
                settings.artifacts / run_id,
                run_id,
                snapshot,
                settings.reports / run_id,
                force,
            )
        else:
            print(f"snapshot {snapshot} is already published: nothing to refit (force=True to)")
        warehouse.finish_run(
            con,
            run_id,
            status="completed",
            snapshot_id=snapshot,
            models_published=result.published,
        )
        warehouse.publish_read_copy(con, settings.warehouse)  # the run row names it
    except BaseException as exc:
        warehouse.finish_run(con, run_id, status="failed", message=warehouse.why_failed(exc))
        raise
    finally:
        con.close()
    return result


def last_manifest(con: duckdb.DuckDBPyConnection, artifacts: Path) -> Path | None:
    """The manifest of the last published results (what the refit policy carries from)."""
    row = warehouse.first_row(
        con, "SELECT run_id FROM runs WHERE models_published ORDER BY run_seq DESC LIMIT 1"
    )
    path = artifacts / row[0] / "manifest.json" if row else None
    return path if path is not None and path.exists() else None

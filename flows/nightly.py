"""The nightly flow: ingest every centre's new exports, then refit and publish the models.

Thin by design: each task calls one plain function of ``transforms`` or ``models``.
Centres are prepared concurrently (mapped tasks, no database access); the warehouse has
one writer, this flow's main thread, loading one file per transaction.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
from prefect import flow, get_run_logger, task, unmapped
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from cohortflow.settings import Settings
from flows.secrets import resolve_pseudonym_key
from models.lmm import PrimaryResult
from models.primary import fit_and_publish_primary
from transforms import warehouse
from transforms.ingest import (
    FileReport,
    PreparedFile,
    Rejection,
    load_prepared,
    prepare_centre,
    unconfigured_centres,
)
from transforms.mapping import CentreMapping, load_all_mappings


@dataclass
class NightResult:
    """What a night did, for the CLI summary and the tests."""

    run_id: str
    workspace: Path
    files: list[FileReport] = field(default_factory=list)
    unconfigured: list[str] = field(default_factory=list)
    snapshot_id: str | None = None
    data_changed: bool = False
    primary: PrimaryResult | None = None
    manifest: Path | None = None
    quarantine_csv: Path | None = None
    quarantine_reasons: list[tuple[str, str, int]] = field(default_factory=list)

    @property
    def rows_quarantined(self) -> int:
        return sum(f.rows_quarantined for f in self.files)


@task(name="prepare-centre", task_run_name="prepare-{mapping.centre_id}")
def prepare_centre_task(
    inbox: Path, mapping: CentreMapping, known: set[str]
) -> list[PreparedFile | Rejection]:
    return prepare_centre(inbox, mapping, known)


@task(name="refresh-views", cache_policy=NO_CACHE)  # its input is a live connection
def refresh_views_task(con, snapshot: str) -> bool:
    return warehouse.refresh_views(con, snapshot)


@task(name="fit-primary-model")
def fit_primary_task(analysis: pl.DataFrame, out_dir: Path, run_id: str, snapshot: str):
    return fit_and_publish_primary(analysis, out_dir, run_id=run_id, snapshot_id=snapshot)


@flow(name="cohortflow-nightly", log_prints=True)
def nightly(workspace: str | None = None, fit_models: bool = True) -> NightResult:
    """Ingest the inbox of ``workspace``; refit the models if the data changed."""
    settings = Settings.from_env(workspace)
    secret = resolve_pseudonym_key(settings)
    mappings = load_all_mappings(settings.centres_config)
    run_id = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:6]
    result = NightResult(run_id, settings.workspace)
    result.unconfigured = unconfigured_centres(settings.inbox, mappings)
    logger = get_run_logger()
    for centre in result.unconfigured:
        logger.warning("inbox/%s has no mapping file in centres/: its files are not read", centre)

    con = warehouse.connect(settings.warehouse)
    try:
        warehouse.start_run(con, run_id)
        known = warehouse.known_files(con)
        futures = prepare_centre_task.map(
            unmapped(settings.inbox), list(mappings.values()), unmapped(known)
        )
        for future in futures:  # the single writer: one centre, then one file, at a time
            result.files += load_prepared(con, future.result(), run_id, secret)
        quarantine_csv = settings.reports / run_id / "quarantine.csv"
        if warehouse.write_run_quarantine(con, run_id, quarantine_csv):
            result.quarantine_csv = quarantine_csv
            result.quarantine_reasons = warehouse.quarantine_reasons(con, run_id)
        result.snapshot_id = warehouse.snapshot_id(con)
        refresh_views_task(con, result.snapshot_id)
        result.data_changed = result.snapshot_id != warehouse.last_published_snapshot(con)
        if fit_models and result.data_changed:
            result.primary, result.manifest = fit_primary_task(
                warehouse.patient_months(con),
                settings.artifacts / run_id,
                run_id,
                result.snapshot_id,
            )
        warehouse.finish_run(
            con,
            run_id,
            status="completed",
            snapshot_id=result.snapshot_id,
            models_published=result.manifest is not None,
            **_counts(result.files),
        )
    except BaseException as exc:
        warehouse.finish_run(con, run_id, status="failed", message=str(exc)[:500])
        raise
    finally:
        con.close()
    _publish_prefect_artifacts(result)
    return result


def _counts(files: list[FileReport]) -> dict:
    return {
        "files_loaded": sum(f.status == "loaded" for f in files),
        "files_rejected": sum(f.status == "rejected" for f in files),
        "rows_loaded": sum(f.rows_loaded for f in files),
        "rows_quarantined": sum(f.rows_quarantined for f in files),
    }


def _publish_prefect_artifacts(result: NightResult) -> None:
    """Readable summaries in the Prefect UI (keys: lowercase letters, digits, dashes)."""
    create_table_artifact(
        key="ingestion-per-file",
        table=[
            {
                "centre": f.centre_id,
                "file": f.file_name,
                "form": f.form or "",
                "status": f.status,
                "read": f.rows_read,
                "loaded": f.rows_loaded,
                "quarantined": f.rows_quarantined,
                "duplicates": f.rows_duplicate,
                "error": f.error or "",
            }
            for f in result.files
        ],
        description=f"Run {result.run_id}: one row per file received",
    )
    if result.primary is not None:
        es = result.primary.effect_size.row(0, named=True)
        create_markdown_artifact(
            key="primary-model",
            markdown=(
                f"# Primary model (snapshot `{result.snapshot_id}`)\n\n"
                f"One-year standardised change in NPRS: **{es['estimate']:.2f}** "
                f"(95% CI {es['ci_low']:.2f} to {es['ci_high']:.2f}), "
                f"{es['n_patients']} patients, {es['n_observations']} patient-months.\n\n"
                f"Results: `{result.manifest.parent}`\n"
            ),
        )

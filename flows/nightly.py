"""The nightly flow: ingest every centre's new exports, then refit and publish the models.

Thin by design: each task calls one plain function of ``transforms`` or ``models``.
Centres are prepared (read and mapped) concurrently by mapped ``prepare-centre`` tasks (no
database access; on threads or a Dask cluster: ``flows/runners.py``);
the warehouse has one writer, this flow's main thread, which validates each form's files
of those centres together and loads them in batches of one file per centre, one
transaction per batch. Centres go through in groups (``COHORTFLOW_CENTRES_PER_BATCH``,
default 100), so that memory holds one group's new exports at a time.

Final state: Completed when all went well; Completed named "Completed with warnings"
when files were rejected, rows quarantined, a centre's files were still being copied
(deferred to the next night) or a centre's mapping file is invalid (that centre is not
read; the others are); Failed when a centre failed unexpectedly (the other centres
are loaded all the same) or the warehouse could not be written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from prefect import flow, get_run_logger, task, unmapped
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed, Failed, State
from prefect.task_runners import TaskRunner

from cohortflow import progress
from cohortflow.errors import CohortflowError, FileNotReady, storage_error
from cohortflow.locks import writer_lock
from cohortflow.settings import Settings
from flows.fit import fit_models_task
from flows.naming import new_run_name, run_name_or_new
from flows.quality import quality_task
from flows.runners import centre_task_runner
from flows.secrets import resolve_pseudonym_key
from models.primary import PrimaryResult
from models.suite import StudyResults
from transforms import warehouse
from transforms.ingest import FileReport, centre_groups, load_prepared
from transforms.pending import centres_to_prepare, night_inputs, record_inputs
from transforms.quality import QualityResult
from transforms.quality.outbox import write_outbound_files
from transforms.reevaluate import Reevaluated, reevaluate_waiting
from transforms.staging.inbox import HashCache, Rejection, unconfigured_centres
from transforms.staging.limits import ReadLimits
from transforms.staging.mapping import CentreMapping, load_mappings_isolating
from transforms.staging.order import export_warnings
from transforms.staging.prepare import StagedExport, prepare_centre

NOT_READY_RETRIES = 3  # waits of 1x, 2x, 4x the settle time, then the centre waits a night


@dataclass
class NightResult:
    """What a night did, for the CLI summary and the tests."""

    run_id: str
    workspace: Path
    files: list[FileReport] = field(default_factory=list)
    unconfigured: list[str] = field(default_factory=list)
    waiting: dict[str, list[str]] = field(default_factory=dict)  # centre -> unsettled files
    failed_centres: dict[str, str] = field(default_factory=dict)  # centre -> error
    broken_mappings: dict[str, str] = field(default_factory=dict)  # centre -> mapping error
    snapshot_id: str | None = None
    data_changed: bool = False
    primary: PrimaryResult | None = None
    manifest: Path | None = None
    quarantine_csv: Path | None = None
    quarantine_reasons: list[tuple[str, str, int]] = field(default_factory=list)
    study: StudyResults | None = None
    quality: QualityResult | None = None
    quality_error: str | None = None
    published: Path | None = None  # the read-only copy analysts open (published/)
    outbox: dict[str, Path] = field(default_factory=dict)  # centre -> its outbound queries
    publication_error: str | None = None
    reevaluated: list[Reevaluated] = field(default_factory=list)  # waiting rows re-read
    results_report: Path | None = None  # reports/<run>/results.html, when the models ran
    results_report_error: str | None = None

    @property
    def rows_quarantined(self) -> int:
        return sum(f.rows_quarantined for f in self.files)

    def warnings(self) -> list[str]:
        """One line per thing a data manager should look at (empty: a clean night)."""
        rejected = [f for f in self.files if f.status == "rejected"]
        notes = [f"{f.centre_id}/{f.file_name} rejected: {f.error}" for f in rejected]
        if self.rows_quarantined:
            notes.append(f"{self.rows_quarantined} rows quarantined ({self.quarantine_csv})")
        notes += [
            f"{c}: still being copied, deferred: {', '.join(n)}" for c, n in self.waiting.items()
        ]
        notes += [f"inbox/{c}/ has no mapping file" for c in self.unconfigured]
        notes += [f"{c}: not read, invalid mapping: {e}" for c, e in self.broken_mappings.items()]
        notes += export_warnings(self.files)  # ambiguous order, modification time in future
        notes += [
            f"{r.centre_id}/{r.file_name}: {r.rows_waiting} rows still waiting: {r.problem}"
            for r in self.reevaluated
            if r.problem
        ]
        if self.quality is not None:
            news = self.quality.night_lines()  # persisting breaches: one line, not a warning
            notes += [f"data quality: {line}" for line in news if line.startswith("NEW ")]
        if self.results_report_error:
            notes.append(f"results report not written: {self.results_report_error}")
        return notes


class NightFailed(CohortflowError):
    """The night ended Failed (a centre, or the quality checks): what it did is in ``night``.

    Prefect wants a failed state's data to be an exception; this one carries the result
    so that the summary can still say what was loaded.
    """

    def __init__(self, message: str, night: NightResult) -> None:
        super().__init__(message)
        self.night = night


def _only_when_not_ready(task, task_run, state) -> bool:
    """Retry files still being copied; a data error would fail the same way again."""
    return isinstance(state.result(raise_on_failure=False), FileNotReady)


@task(
    name="prepare-centre",
    task_run_name="prepare-{mapping.centre_id}",
    retries=NOT_READY_RETRIES,
    retry_condition_fn=_only_when_not_ready,
    cache_policy=NO_CACHE,  # unchanged files are skipped by content hash, not by a cache
)
def prepare_centre_task(
    inbox: Path,
    mapping: CentreMapping,
    known: set[tuple[str, str]],
    settle_seconds: float,
    limits: ReadLimits,
    hashes: HashCache | None = None,
) -> list[StagedExport | Rejection]:
    return prepare_centre(
        inbox, mapping, known, settle_seconds=settle_seconds, limits=limits, hashes=hashes
    )


def _outcome(future) -> list[StagedExport | Rejection] | FileNotReady | BaseException:
    """A centre's prepared files, or what stopped it (returned, never raised)."""
    try:
        return future.result()
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # one centre's failure never stops the others
        return exc  # (invariant 4; a library panic included)


@task(name="refresh-views", cache_policy=NO_CACHE)  # its input is a live connection
def refresh_views_task(con, snapshot: str) -> bool:
    return warehouse.refresh_views(con, snapshot)


@flow(name="cohortflow-nightly", flow_run_name=new_run_name, log_prints=True)
def nightly(
    workspace: str | None = None,
    fit_models: bool = True,
    check_quality: bool = True,
    settings: Settings | None = None,
) -> State:
    """Ingest the inbox of ``workspace``; refit the models if the data changed.

    Args:
        workspace: the workspace folder (null: $COHORTFLOW_HOME, else ./cohortflow-data);
            its inbox/ holds one folder per centre, centres/ one mapping file per centre.
        fit_models: refit and publish the models when the data changed.
        check_quality: run the data-quality checks and write their report.
        settings: in-process callers (the CLI, tests) pass theirs; a deployment leaves it
            null and the worker's environment gives them (with ``workspace``).
    """
    settings = settings or Settings.from_env(workspace)
    with writer_lock(settings.workspace, "run (nightly flow)"):  # a deployment's night too
        return _night(settings, fit_models, check_quality)


def _night(settings: Settings, fit_models: bool, check_quality: bool) -> State:
    """The night itself, the workspace's writer lock held."""
    secret = resolve_pseudonym_key(settings)
    mappings, broken = load_mappings_isolating(settings.centres_config)
    with progress.step("Looking for new exports in the inbox"):
        inputs = night_inputs(settings)  # files read only if new or changed (a cache)
    run_id = run_name_or_new()
    result = NightResult(run_id, settings.workspace, broken_mappings=broken)
    unconfigured = unconfigured_centres(settings.inbox, mappings)
    result.unconfigured = [c for c in unconfigured if c not in broken]  # those are reported
    logger = get_run_logger()
    for centre in result.unconfigured:
        logger.warning("inbox/%s has no mapping file in centres/: its files are not read", centre)

    con = warehouse.connect(settings.warehouse, memory_limit=settings.duckdb_memory)
    try:
        # one key per warehouse: another key is refused before any write, even a run row
        warehouse.check_key(con, secret, inbox=settings.inbox, mappings=mappings)
        warehouse.start_run(con, run_id, kind="night")
        known = warehouse.known_files(con) - warehouse.files_to_restage(
            con, {k: h for m in mappings.values() for k, h in m.content_hashes().items()}
        )  # a file loaded under a mapping changed since is read again
        busy = centres_to_prepare(
            settings.inbox, list(mappings.values()), known, inputs.hashes, settings.settle_seconds
        )  # the centres with a new, changed, refused or unsettled file: the others, no task
        if busy:  # a runner started once for the night (a Dask cluster takes seconds)
            with centre_task_runner(settings) as runner:
                for group in centre_groups(busy, settings.centres_per_batch):
                    outcomes = _prepare(settings, runner, group, known, inputs.hashes)
                    _load_centres(con, outcomes, result, secret)
                    del outcomes  # memory holds one group's exports at a time
        result.reevaluated = reevaluate_waiting(con, settings.inbox, mappings, run_id, secret)
        _close_night(con, result, settings, fit_models)
        if check_quality:
            _check_quality(con, result, settings, sorted({*mappings, *broken}))
            _write_outbox(result, settings, mappings, secret)
        _publish_for_readers(con, result, settings)
        if check_quality and _clean(result):  # the next night with these inputs: nothing to do
            record_inputs(con, run_id, inputs.digest)
    except BaseException as exc:  # a full disk is said as such, not as a failed ROLLBACK
        full = storage_error(exc, settings.workspace) if isinstance(exc, Exception) else None
        message = str(full)[:500] if full is not None else warehouse.why_failed(exc)
        warehouse.finish_run(con, run_id, status="failed", message=message)
        if full is not None:
            raise full from exc
        raise
    finally:
        con.close()
    _publish_prefect_artifacts(result)
    return _final_state(result, logger)


def _clean(result: NightResult) -> bool:
    """A night whose rerun on the same inputs would do nothing more: every centre read,
    nothing deferred, checked and published; no export held back for a date to come."""
    future = [f for f in result.files if f.status == "rejected" and "in the future" in str(f.error)]
    problems = result.failed_centres or result.waiting or result.quality_error
    return not (problems or result.publication_error or future)


def _prepare(
    settings: Settings,
    runner: TaskRunner,
    group: list[CentreMapping],
    known: set[tuple[str, str]],
    hashes: HashCache,
) -> dict[str, list[StagedExport | Rejection] | FileNotReady | BaseException]:
    """Every centre of ``group`` read and mapped, concurrently on ``runner`` (threads or a
    Dask cluster); one outcome per centre.

    The tasks belong to the night's own flow run, not to a subflow: a subflow's parameters
    are sent to the Prefect API, which refuses a run whose parameters pass 512 KB, and a
    hundred centres' mappings (or one centre's drug dictionary) do; tasks' inputs are never
    sent. ``hashes``: the inbox's content hashes, read by the tasks, never changed.
    """
    limits = ReadLimits.from_settings(settings)  # over one, a file is rejected alone
    delays = [settings.settle_seconds * 2**i for i in range(NOT_READY_RETRIES)]
    futures = runner.map(  # Prefect's stubs want the task's return type to be awaitable too
        prepare_centre_task.with_options(retry_delay_seconds=delays),  # type: ignore[arg-type]
        {
            "inbox": unmapped(settings.inbox),
            "mapping": group,
            "known": unmapped(known),
            "settle_seconds": unmapped(settings.settle_seconds),
            "limits": unmapped(limits),
            "hashes": unmapped(hashes),
        },
    )
    outcomes: dict[str, list[StagedExport | Rejection] | FileNotReady | BaseException] = {}
    with progress.step("Reading centres' new exports", total=len(group)) as step:
        for mapping, future in zip(group, futures, strict=True):
            outcomes[mapping.centre_id] = _outcome(future)
            step.advance()
    return outcomes


def _check_quality(con, result: NightResult, settings: Settings, centres: list[str]) -> None:
    """The data is loaded and the run recorded: a failing check fails the flow, not the run."""
    try:
        result.quality = quality_task(con, settings, result.run_id, centres)
    except Exception as exc:  # a full disk: its path and cause, in one line
        full = storage_error(exc, settings.reports / result.run_id)
        result.quality_error = str(full) if full else f"{type(exc).__name__}: {exc}"
        get_run_logger().error("data-quality checks failed: %s", result.quality_error)


def _write_outbox(result: NightResult, settings: Settings, mappings: dict, secret: str) -> None:
    """Each centre's outbound query file, with its own ids (a plain call, not a task:
    Prefect never sees the key or the ids). A failure is reported, the night stands."""
    if result.quality is None:
        return
    try:
        result.outbox = write_outbound_files(
            settings.outbox,
            result.quality.open_queries,
            result.quality.information,
            inbox=settings.inbox,
            mappings=mappings,
            secret=secret,
        )
    except Exception as exc:
        result.quality_error = f"outbound query files not written: {type(exc).__name__}: {exc}"
        get_run_logger().error("%s", result.quality_error)


def _publish_for_readers(con, result: NightResult, settings: Settings) -> None:
    """The committed night becomes what analysts read; a failed copy fails the flow loudly
    (readers keep the previous night's copy), never the run already recorded."""
    try:
        with progress.step("Publishing the copy for readers"):
            result.published = warehouse.publish_read_copy(con, settings.warehouse)
    except Exception as exc:
        result.publication_error = f"{type(exc).__name__}: {exc}"
        get_run_logger().error("read-only copy not published: %s", result.publication_error)


def _load_centres(con, outcomes: dict, result: NightResult, secret: str) -> None:
    """The single writer: every centre that is ready, validated and loaded together."""
    logger = get_run_logger()
    ready = []
    for centre, outcome in outcomes.items():
        if isinstance(outcome, FileNotReady):
            result.waiting[centre] = outcome.names
            logger.warning("%s", outcome)
        elif isinstance(outcome, BaseException):
            result.failed_centres[centre] = f"{type(outcome).__name__}: {outcome}"
            logger.error("centre %s failed; the other centres are loaded: %s", centre, outcome)
        else:
            ready += outcome
    result.files += load_prepared(con, ready, result.run_id, secret)


def _close_night(con, result: NightResult, settings: Settings, fit_models: bool) -> None:
    """Quarantine report, snapshot, views, models if the data changed, then the run row."""
    run_id = result.run_id
    quarantine_csv = settings.reports / run_id / "quarantine.csv"
    if warehouse.write_run_quarantine(con, run_id, quarantine_csv):
        result.quarantine_csv = quarantine_csv
        result.quarantine_reasons = warehouse.quarantine_reasons(con, run_id)
    result.snapshot_id = warehouse.snapshot_id(con)
    with progress.step("Analysis views"):
        refresh_views_task(con, result.snapshot_id)
    result.data_changed = result.snapshot_id != warehouse.last_published_snapshot(con)
    if fit_models and result.data_changed:
        fitted = fit_models_task(
            con, settings.artifacts / run_id, run_id, result.snapshot_id, settings.reports / run_id
        )
        result.primary, result.manifest = fitted.primary, fitted.manifest
        result.study = fitted.study
        result.results_report, result.results_report_error = fitted.report, fitted.report_error
    warehouse.finish_run(
        con,
        run_id,
        status="partial" if result.failed_centres or result.broken_mappings else "completed",
        snapshot_id=result.snapshot_id,
        models_published=result.manifest is not None,
        message=_run_message(result),
        **_counts(result.files),
    )


def _run_message(result: NightResult) -> str | None:
    """The runs row's message: the centres not loaded and why (failed, or mapping broken)."""
    problems = {**result.broken_mappings, **result.failed_centres}
    return "; ".join(f"{c}: {e}" for c, e in sorted(problems.items()))[:500] or None


def _final_state(result: NightResult, logger) -> State:
    if result.failed_centres:
        names = ", ".join(result.failed_centres)
        message = f"centre(s) failed: {names} (others loaded)"
        return Failed(message=message, data=NightFailed(message, result))
    if result.publication_error:
        message = f"loaded, but the copy for readers was not published: {result.publication_error}"
        return Failed(message=message, data=NightFailed(message, result))
    if result.quality_error:
        message = f"data-quality checks failed: {result.quality_error}"
        return Failed(message=message, data=NightFailed(message, result))
    warnings = result.warnings()
    if warnings:
        for line in warnings:
            if not line.startswith("data quality: "):  # the quality task logged those
                logger.warning("%s", line)
        return Completed(
            name="Completed with warnings", message="; ".join(warnings)[:1000], data=result
        )
    return Completed(message="all files loaded", data=result)


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
        key="ingestion-per-centre",
        table=per_centre_rows(result),
        description=f"Run {result.run_id}: one row per centre",
    )
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
    # the models and data-quality artifacts are made by their own tasks


def per_centre_rows(result: NightResult) -> list[dict]:
    """One row per centre: files and rows of the night, and what needs attention."""
    rows: dict[str, dict] = {}
    for f in result.files:
        row = rows.setdefault(
            f.centre_id,
            {
                "centre": f.centre_id,
                "status": "ok",
                "files": 0,
                "rejected": 0,
                "loaded": 0,
                "quarantined": 0,
            },
        )
        row["files"] += 1
        row["rejected"] += f.status == "rejected"
        row["loaded"] += f.rows_loaded
        row["quarantined"] += f.rows_quarantined
    empty = {"files": 0, "rejected": 0, "loaded": 0, "quarantined": 0}
    for centre, names in result.waiting.items():
        rows[centre] = {"centre": centre, "status": f"waiting: {', '.join(names)}", **empty}
    for centre, error in result.failed_centres.items():
        rows[centre] = {"centre": centre, "status": f"FAILED: {error}", **empty}
    for centre, error in result.broken_mappings.items():
        rows[centre] = {"centre": centre, "status": f"MAPPING INVALID: {error}", **empty}
    for row in rows.values():
        if row["status"] == "ok" and (row["rejected"] or row["quarantined"]):
            row["status"] = "warnings"
    return [rows[c] for c in sorted(rows)]

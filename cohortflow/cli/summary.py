"""Plain-text summaries a data manager reads: what a night did, and the warehouse's state."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import polars as pl

from cohortflow.cli import status
from cohortflow.locks import writer_running
from cohortflow.settings import Settings
from models import headline
from schemas.forms import FORMS
from transforms import warehouse
from transforms.staging.order import applied_orders, file_notes

TOP_REASONS = 12


def night_summary(result, truth_path: Path | None = None) -> str:
    """The per-centre table, the quarantine's main reasons, the model, and where files are."""
    lines = [f"Night {result.run_id}"]
    if not result.files:
        lines.append("  no new files in the inbox: nothing loaded")
    else:
        lines += _ingestion_lines(result.files)
        lines += _export_order_lines(result.files)
    lines += _attention_lines(result)
    if result.quality is not None:
        lines += ["", *quality_lines(result.quality)]
    elif result.quality_error:
        lines += ["", f"  ERROR   data-quality checks failed: {result.quality_error}"]
    lines.append("")
    lines += _model_lines(result, truth_path)
    lines += _files_to_open(result)
    return "\n".join(lines)


def _attention_lines(result) -> list[str]:
    """Centres not read, deferred or failed, and the quarantine's main reasons."""
    lines = [
        f"  WARNING inbox/{centre}/ has no mapping file in centres/: not read"
        for centre in result.unconfigured
    ]
    for centre, names in result.waiting.items():
        lines.append(
            f"  WARNING {centre}: files still being copied ({', '.join(names)}): "
            "the centre is deferred to the next night"
        )
    for centre, error in result.failed_centres.items():
        lines.append(f"  ERROR   {centre} failed (the other centres were loaded): {error}")
    lines += [
        f"  ERROR   {centre} not read (the other centres were loaded): {error}"
        for centre, error in getattr(result, "broken_mappings", {}).items()
    ]
    for f in result.files:
        if f.restaged:
            lines.append(
                f"  RE-READ {f.centre_id}/{f.file_name}: its centre's {f.form} mapping changed; "
                f"staged again ({f.rows_loaded} rows loaded, {f.rows_changed} corrected, "
                f"{f.rows_quarantined} quarantined)"
            )
    for r in result.reevaluated:
        if r.rows_loaded:
            lines.append(
                f"  FIXED   {r.centre_id}/{r.file_name}: {r.rows_loaded} {r.form} rows loaded "
                "from quarantine (the record they waited for is fixed)"
            )
        if r.problem:
            lines.append(
                f"  WARNING {r.centre_id}/{r.file_name}: {r.rows_waiting} {r.form} rows stay "
                f"in quarantine: {r.problem}"
            )
    if result.quarantine_reasons:
        lines += ["", "  Quarantined values by rule (details in the quarantine CSV):"]
        shown = result.quarantine_reasons[:TOP_REASONS]
        lines += [f"  {n:>6}  {field:<28} {rule}" for field, rule, n in shown]
        hidden = result.quarantine_reasons[TOP_REASONS:]
        if hidden:
            lines.append(f"  {sum(n for *_, n in hidden):>6}  ({len(hidden)} more kinds)")
    return lines


def _export_order_lines(files) -> list[str]:
    """Where a centre sent several exports of a form: the order they were applied in (a
    warning when no export date is declared), and files dated in the future."""
    lines = [
        f"  {'WARNING' if order.ambiguous else 'ORDER  '} {order.describe()}"
        for order in applied_orders(files)
    ]
    return lines + [f"  WARNING {note}" for note in file_notes(files)]


def _for_readers(result) -> str:
    """The published copy when this night published one, else the live file."""
    published = getattr(result, "published", None)
    if published is None:
        return str(result.workspace / "warehouse.duckdb")
    return f"{published} (a read-only copy: open this one, the night writes the other)"


def _files_to_open(result) -> list[str]:
    lines = [
        "",
        "Files to open:",
        f"  warehouse   {_for_readers(result)}",
        f"              tables: {', '.join(f.table for f in FORMS.values())};",
        "              analysis views: analysis_patient_months, analysis_patients, "
        "hads_scored, sf12_scored, ketamine_doses;",
        "              history: <table>_history, changes, absent_rows; "
        "operations: quarantine, ingested_files, runs, dq_results",
    ]
    if result.quarantine_csv:
        lines.append(f"  quarantine  {result.quarantine_csv}")
    if result.quality is not None:
        lines.append(f"  quality     {result.quality.report}  (open in a browser)")
    outbox = getattr(result, "outbox", None)
    if outbox:
        folder = next(iter(outbox.values())).parent.parent
        lines.append(
            f"  outbox      {folder}/<centre>/  (each centre's queries with its own patient "
            f"ids, to send back: {len(outbox)} centres)"
        )
    if result.manifest:
        lines.append(f"  results     {result.manifest.parent}/  (parquet + CSV + manifest.json)")
        report = getattr(result, "results_report", None)
        lines.append(_report_line(report, getattr(result, "results_report_error", None)))
    return lines


def quality_lines(quality, top: int = 8) -> list[str]:
    """The scorecard's headline and the breaches a data manager acts on first."""
    overall = quality.scorecard.filter(pl.col("centre_id") == "ALL").row(0, named=True)
    cells = ", ".join(
        f"{name} {overall[name]:.0f}%"
        for name in ("conformance", "completeness", "plausibility", "timeliness")
        if overall.get(name) is not None
    )
    listed = getattr(quality, "breach_list", None)
    count = len(quality.breaches) if listed is None or listed.is_empty() else listed.height
    lines = [f"Data quality: checks passed {cells}; {count} thresholds breached (cohort included)"]
    news = quality.night_lines()  # new breaches by name, the persisting ones in one line
    lines += [f"  {line}" for line in news[:top]]
    if len(news) > top:
        lines.append(f"  ... {len(news) - top} more in the report")
    lines += _action_lines(quality)
    lines.append(f"  report: {quality.report}")
    return lines


def _action_lines(quality, top: int = 5) -> list[str]:
    """The centres needing action, worst first (the report's first table)."""
    actions = getattr(quality, "actions", None)
    if actions is None or actions.is_empty():
        return []
    lines = ["  centres needing action (rows to fix, escalated, oldest open query):"]
    for row in actions.head(top).iter_rows(named=True):
        lines.append(
            f"    {row['centre_id']}: {row['open_to_fix']} to fix, {row['escalated']} escalated"
            f", oldest {row['oldest_open']}; breaches {row['breaches_new']} new, "
            f"{row['breaches_persisting']} persisting"
        )
    if actions.height > top:
        lines.append(f"    ... {actions.height - top} more centres in the report")
    return lines


def _ingestion_lines(files) -> list[str]:
    by_centre: dict[str, Counter] = {}
    names: dict[str, set[str]] = {}
    rejected: dict[str, set[str]] = {}
    for f in files:  # a workbook holds several forms: count it once as a file
        c = by_centre.setdefault(f.centre_id, Counter())
        names.setdefault(f.centre_id, set()).add(f.file_name)
        if f.status == "rejected":
            rejected.setdefault(f.centre_id, set()).add(f.file_name)
        c["files"] = len(names[f.centre_id])
        c["rejected"] = len(rejected.get(f.centre_id, ()))
        for k in ("rows_read", "rows_loaded", "rows_quarantined", "rows_duplicate"):
            c[k] += getattr(f, k)
    total = sum(by_centre.values(), Counter())
    lines = [
        f"  {total['files']} files from {len(by_centre)} centres, {total['rejected']} rejected; "
        f"rows read {total['rows_read']}: loaded {total['rows_loaded']}, "
        f"quarantined {total['rows_quarantined']}, exact duplicates {total['rows_duplicate']}",
        "",
        "  centre  files  read  loaded  quarantined  duplicates",
    ]
    for centre, c in sorted(by_centre.items()):
        flag = "  <- rejected file(s)" if c["rejected"] else ""
        lines.append(
            f"  {centre:<6} {c['files']:>6} {c['rows_read']:>5} {c['rows_loaded']:>7}"
            f" {c['rows_quarantined']:>12} {c['rows_duplicate']:>11}{flag}"
        )
    for f in files:
        if f.status == "rejected":
            lines.append(f"  REJECTED {f.centre_id}/{f.file_name}: {f.error}")
    return lines


def _model_lines(result, truth_path: Path | None) -> list[str]:
    """The models' headline (models.headline), with the simulator's truth when known."""
    if result.primary is None:
        reason = "data unchanged since the last fit" if not result.data_changed else "not asked"
        return [f"Primary model: not refitted ({reason}); snapshot {result.snapshot_id}"]
    lines = headline.as_text(headline.primary_block(result.primary, result.snapshot_id))
    if truth_path and truth_path.exists():
        truth = json.loads(truth_path.read_text())
        lines.append(f"  simulator's true mean slope per month: {truth['expected_slope']:+.3f}")
    if getattr(result, "study", None) is not None:
        lines += ["", *headline.as_text(headline.secondary_block(result.study))]
        lines += headline.as_text(headline.fit_times_block(result.study.fit_seconds))
        lines += carried_lines(result.study)
    return lines


def carried_lines(study) -> list[str]:
    """The models the refit policy carried over, each with the snapshot it is as of."""
    carried = getattr(study, "carried", [])
    if not carried:
        return []
    lines = ["  carried over (refit policy, models/policy.py; refit weekly or on growth):"]
    for name in carried:
        entry = study.as_of[name]
        lines.append(
            f"    {name:<13} as of snapshot {entry['snapshot_id']} (run {entry['run_id']}, "
            f"fitted {entry['fitted_at'][:16].replace('T', ' ')} UTC)"
        )
    return lines


def fit_summary(result) -> str:
    """What ``cohortflow fit`` prints: the headline as the night shows it, fit times, and
    where the results and their report are (or that the snapshot was already published)."""
    if result.manifest is None:
        return f"Snapshot {result.snapshot_id} is already published; --force refits it anyway."
    lines = headline.as_text(headline.primary_block(result.primary, result.snapshot_id))
    lines += ["", *headline.as_text(headline.secondary_block(result.study))]
    lines += headline.as_text(headline.fit_times_block(result.study.fit_seconds))
    lines += ["", f"Models refitted on snapshot {result.snapshot_id}:"]
    lines.append(f"  results     {result.manifest.parent}/  (parquet + CSV + manifest.json)")
    lines.append(_report_line(result.report, result.report_error))
    return "\n".join(lines)


def _report_line(report: Path | None, error: str | None) -> str:
    if report is not None:
        return f"  report      {report}  (the study's results, open in a browser)"
    return f"  report      NOT WRITTEN: {error}"


def status_summary(settings: Settings) -> str:
    """The last night at a glance, the last runs by kind, then per centre its files, rows
    and last data-quality pass rate (``cohortflow.cli.status``), in 100 columns."""
    con, source = warehouse.open_for_reading(
        settings.warehouse, memory_limit=settings.duckdb_memory
    )
    try:
        lines = [reading_line(settings, source), ""]
        lines += status.last_night_lines(con, settings.artifacts)
        lines += ["", "Last runs:", *status.runs_lines(con)]
        lines += ["", "Per centre:", *status.centre_lines(con)]
    finally:
        con.close()
    return "\n".join(lines + broken_mapping_lines(settings))


def broken_mapping_lines(settings: Settings) -> list[str]:
    """The centres whose mapping file does not load now: not read by the next night."""
    from transforms.staging.mapping import load_mappings_isolating

    if not settings.centres_config.is_dir():
        return []
    _, broken = load_mappings_isolating(settings.centres_config)
    if not broken:
        return []
    head = "\nMapping files that do not load (their centre is not read until fixed):"
    return [head, *(f"  {centre}: {error}" for centre, error in sorted(broken.items()))]


def reading_line(settings: Settings, source: warehouse.ReadSource) -> str:
    """Which state a reader sees, and whether a night is changing it right now."""
    line = f"Reading the {source.describe()}."
    writer = writer_running(settings.workspace)
    if writer is not None:
        line += f" Running now: {writer}; its results appear when it commits."
    return line

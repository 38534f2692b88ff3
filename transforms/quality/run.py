"""A data-quality run: every check of the catalogue per centre, scored, stored, reported.

What a data manager reads every morning, after OHDSI's Data Quality Dashboard (Kahn
categories, thresholds, results per run) with three differences:

* results keep raw counts (``n_checked``, ``n_violating``) and the status is computed
  from thresholds (percent and/or count): :func:`rescore` applies new thresholds to any
  stored run without re-running a check;
* a check with nothing to check is ``not_applicable``, never passed;
* runs are kept (``dq_runs``, ``dq_results``), so that :func:`trend` and
  :func:`status_changes` show what got better or worse.

The nightly flow calls :func:`run_quality`; breaches (failed checks) end it in a warning.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path

import duckdb
import polars as pl

from cohortflow import progress
from cohortflow.errors import CohortflowError
from schemas import expectations as ex
from transforms.quality import checks as qc
from transforms.quality import plausibility as qp
from transforms.quality.actions import (
    breach_ages,
    breach_table,
    centres_needing_action,
    night_lines,
)
from transforms.quality.checks import CheckContext, Outcome
from transforms.quality.lifecycle import (
    EVERYWHERE,
    Reach,
    kept_information,
    lifecycle_by_centre,
    lifecycle_complete,
    observed_problems,
    open_queries,
    update_log,
)
from transforms.quality.score import Breach, breaches_of, score, scorecard, status_changes, trend
from transforms.quality.store import (
    ensure_quality_tables,
    expand,
    quarantine_by_centre,
    store_run,
    write_queries,
)
from transforms.warehouse.ddl import QUALITY_MOMENTS_DDL

SQL_CHECKS = {
    "conf_hads_sum": qc.hads_sum,
    "conf_known_patient": qc.known_patient,
    "conf_same_centre": qc.same_centre,
    "conf_quarantine_rate": qc.quarantine_rate,
    "conf_files_rejected": qc.files_rejected,
    "comp_monthly_calls": qc.monthly_calls,
    "comp_hads_baseline": qc.hads_baseline,
    "comp_sf12_baseline": qc.sf12_baseline,
    "comp_one_year_questionnaires": qc.one_year_questionnaires,
    "comp_ketamine_given": qc.ketamine_given,
    "comp_retention_month12": qc.retention_month12,
    "plau_nprs_jump": qp.nprs_jump,
    "plau_call_timing": qp.call_timing,
    "plau_hads_distribution": qp.hads_distribution,
    "plau_sf12_distribution": qp.sf12_distribution,
    "plau_nprs_distribution": qp.nprs_distribution,
    "time_last_export": qp.last_export,
}


@dataclass
class QualityResult:
    """What a quality run produced, for the flow, the CLI and the tests."""

    run_id: str
    run_seq: int
    results: pl.DataFrame  # dq_results rows of this run
    scorecard: pl.DataFrame  # per centre (and ALL): percent of checks passed per category
    breaches: list[Breach]
    report: Path
    queries: dict[str, Path]  # centre -> CSV of its queries
    markdown: str  # the scorecard for a Prefect markdown artifact
    data_docs: Path | None = None
    changes: pl.DataFrame = field(default_factory=pl.DataFrame)  # status changes since last run
    open_queries: pl.DataFrame = field(default_factory=pl.DataFrame)  # dq_query_log, open now
    information: pl.DataFrame = field(default_factory=pl.DataFrame)  # missing, not breached
    lifecycle: pl.DataFrame = field(default_factory=pl.DataFrame)  # per centre: open, new, ...
    breach_list: pl.DataFrame = field(default_factory=pl.DataFrame)  # with ALL, new/persisting
    actions: pl.DataFrame = field(default_factory=pl.DataFrame)  # centres needing action

    def night_lines(self) -> list[str]:
        """New breaches one by one; persisting ones and the queries in a line each."""
        if self.breach_list.is_empty() and self.lifecycle.is_empty():
            return self.warnings()
        return night_lines(self.breach_list, self.lifecycle)

    def warnings(self) -> list[str]:
        """One line per breach (empty: nothing to act on)."""
        return [str(b) for b in self.breaches]


def run_quality(
    con: duckdb.DuckDBPyConnection,
    *,
    run_id: str,
    workspace_reports: Path,
    now: dt.datetime,
    cadence_days: int = ex.EXPORT_CADENCE_DAYS,
    thresholds: Mapping[str, ex.Threshold] | None = None,
    expected_centres: Iterable[str] = (),
    with_gx: bool = True,
    full: bool = False,
) -> QualityResult:
    """Run every check on the warehouse as it stands; store, report and return the results.

    Writes ``workspace_reports/<run_id>/``: ``quality.html`` (plots embedded),
    ``queries/<centre>_queries.csv`` and ``data_docs/`` (GX Data Docs). The analysis views
    must be current (``warehouse.refresh_views``). ``now`` dates the run (months since
    inclusion, days since a centre's last file); ``expected_centres`` that never sent a
    file are late. ``with_gx=False`` skips the GX suites (their checks are then absent).
    Only the centres whose data changed since the last run are checked again
    (``checks_scope``; ``full=True``: every centre); the others keep that run's results.
    """
    from transforms.quality import report as quality_report  # matplotlib: only to draw

    ensure_quality_tables(con)
    con.execute(QUALITY_MOMENTS_DDL)
    _require_views(con)
    ctx = CheckContext(_naive_utc(now), cadence_days, tuple(expected_centres))
    scope = checks_scope(con, ctx, with_gx=with_gx, full=full)
    ctx = replace(ctx, scope=scope.centres)
    out_dir = workspace_reports / run_id
    docs = out_dir / "data_docs" if with_gx else None
    outcome = with_carried(con, run_checks(con, ctx, docs, run_id), scope)
    docs = docs if docs is not None and docs.exists() else None  # GX ran (some centre to check)
    results = score(expand(outcome.counts, _centres(con, ctx), outcome.ran), thresholds)
    run_seq = store_run(con, run_id, ctx, results, outcome.queries, docs, outcome.gx_digests)
    reach = lifecycle_reach(con, scope, results)
    observed, information = observed_problems(con, outcome.queries, results, reach)
    update_log(con, observed, run_id, ctx.now, reach=reach, information=information)
    open_now, information = open_queries(con, run_id), kept_information(con)
    staged = write_queries(open_now, _staging(out_dir) / "queries")
    queries = {centre: out_dir / "queries" / path.name for centre, path in staged.items()}
    card, breaches, changes = scorecard(results), breaches_of(results), status_changes(con, run_id)
    lifecycle = lifecycle_by_centre(con, run_id)
    breach_list = breach_table(results, breach_ages(con, run_id))
    actions = centres_needing_action(lifecycle, breach_list, changes)
    report = out_dir / "quality.html"
    with progress.step("Data-quality report"):
        page = quality_report.render_report(
            report,
            run_id=run_id,
            results=results,
            scorecard=card,
            completeness=qc.monthly_completeness(con, ctx.today),
            quarantine=quarantine_by_centre(con),
            trend=trend(con),
            changes=changes,
            queries=queries,
            actions=actions,
            breach_list=breach_list,
            retention=qc.retention(con, ctx.today),
            scope=scope,
        )
    _move_into_place(out_dir, page)
    con.execute("UPDATE dq_runs SET report_path = ? WHERE run_id = ?", [str(report), run_id])
    markdown = quality_report.markdown(run_id, card, breaches, report)
    return QualityResult(
        run_id,
        run_seq,
        results,
        card,
        breaches,
        report,
        queries,
        markdown,
        docs,
        changes,
        open_queries=open_now,
        information=information,
        lifecycle=lifecycle,
        breach_list=breach_list,
        actions=actions,
    )


STAGING = ".report.partial"


def _staging(out_dir: Path) -> Path:
    """A fresh hidden folder for this run's report files, before they are moved in.

    Staging folders left in other runs' folders by a killed run are removed: the
    single-writer lock means no other quality run is writing one now.
    """
    for debris in out_dir.parent.glob(f"*/{STAGING}"):
        shutil.rmtree(debris, ignore_errors=True)
    staging = out_dir / STAGING
    staging.mkdir(parents=True)
    return staging


def _move_into_place(out_dir: Path, page: str) -> None:
    """Queries folder in, then the HTML page last: a folder with ``queries/`` has its page.

    The whole run folder is not renamed: the night wrote ``quarantine.csv`` in it earlier.
    """
    staging = out_dir / STAGING
    (staging / "quality.html").write_text(page, encoding="utf-8")
    if (staging / "queries").exists():
        shutil.rmtree(out_dir / "queries", ignore_errors=True)
        (staging / "queries").rename(out_dir / "queries")
    (staging / "quality.html").replace(out_dir / "quality.html")
    staging.rmdir()


def _require_views(con) -> None:
    if not con.execute("SELECT snapshot_id FROM views_built").fetchall():
        raise CohortflowError(
            "no analysis views to check yet: ingest data first (cohortflow run), "
            "then run the quality checks"
        )


def _naive_utc(moment: dt.datetime) -> dt.datetime:
    """As the warehouse stores times: naive UTC."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(dt.UTC).replace(tzinfo=None)


def run_checks(con, ctx: CheckContext, docs: Path | None, run_name: str) -> Outcome:
    """The DuckDB/polars checks, then (with ``docs``) the GX suites; with ``ctx.scope``,
    on those centres' rows only, and GX only on the tables whose rows or suite changed
    there (``gx_tables_to_validate``; the other results are carried: ``with_carried``)."""
    sql_checks = [c.check_id for c in ex.CHECKS if not c.expectations]
    restricted = qc.only_centres(con, ctx.scope) if ctx.scope is not None else nullcontext()
    outcomes = []
    total = len(sql_checks) + (docs is not None)
    with progress.step("Data-quality checks", total=total) as step, restricted:
        for check_id in sql_checks:
            outcomes.append(SQL_CHECKS[check_id](con, ctx))
            step.advance()
        if docs is not None:
            outcomes.append(_gx_checks(con, ctx, docs, run_name))
            step.advance()
    return Outcome(
        counts=pl.concat([o.counts for o in outcomes]),
        queries=pl.concat([o.queries for o in outcomes]),
        ran=tuple(c for o in outcomes for c in o.ran),
        gx_digests=outcomes[-1].gx_digests,
    )


def _gx_checks(con, ctx: CheckContext, docs: Path, run_name: str) -> Outcome:
    """The GX suites of the tables to validate (all on a full run), and the digests of
    what they validated; nothing when no table changed (GX is then not even imported)."""
    from transforms.quality.gx import GX_TABLES, table_digests  # DuckDB only

    digests = table_digests(con)  # of the centres in scope: only_centres holds
    tables = GX_TABLES if ctx.scope is None else gx_tables_to_validate(con, digests, ctx.scope)
    if not tables:
        return Outcome(gx_digests=digests.clear())
    from transforms.quality.gx import run_gx_checks  # GX's import: about 1.5 s

    outcome = run_gx_checks(con, docs, run_name, tables)
    failed = outcome.counts.filter(centre_id=qc.EVERY_CENTRE)["check_id"]  # kept: none
    broken = {c.table for c in ex.CHECKS if c.check_id in set(failed)}
    validated = digests.filter(
        pl.col("table_name").is_in(tables) & ~pl.col("table_name").is_in(broken)
    )
    return replace(outcome, gx_digests=validated)


def gx_tables_to_validate(con, digests: pl.DataFrame, centres: tuple[str, ...]) -> tuple[str, ...]:
    """The GX tables whose rows (the columns GX reads) or suite changed in any of
    ``centres`` since their results were computed (``dq_gx_digests``); a centre or table
    never validated counts as changed."""
    kept = con.sql(
        "SELECT table_name, centre_id, n_rows, content, suite FROM dq_gx_digests "
        "WHERE list_contains($centres, centre_id)",
        params={"centres": list(centres)},
    ).pl()
    now = digests.select(kept.columns)
    differ = now.join(kept, on=["table_name", "centre_id"], how="full", coalesce=True)
    changed = differ.filter(
        pl.col("n_rows").ne_missing(pl.col("n_rows_right"))
        | pl.col("content").ne_missing(pl.col("content_right"))
        | pl.col("suite").ne_missing(pl.col("suite_right"))
    )
    found = set(changed["table_name"])
    return tuple(t for t in dict.fromkeys(c.table for c in ex.gx_checks()) if t in found)


def _centres(con, ctx: CheckContext) -> list[str]:
    rows = con.execute(
        "SELECT centre_id FROM patients UNION SELECT centre_id FROM ingested_files"
    ).fetchall()
    return sorted({r[0] for r in rows} | set(ctx.expected_centres))


# --- which centres a run checks again ---------------------------------------------------

FULL_EVERY_DAYS = 7  # a run checks every centre at least this often (full verification)
# Computed for every centre on every run: cheap (ingested_files), depending on the date,
# or comparing each centre with all the others (from per-centre moments kept in a table).
EVERY_RUN = (
    "conf_quarantine_rate",
    "conf_files_rejected",
    "time_last_export",
    "plau_hads_distribution",
    "plau_sf12_distribution",
    "plau_nprs_distribution",
)
OPEN_WINDOW_DAYS = 367  # expected monthly calls depend on the date for a patient's first year


@dataclass(frozen=True)
class Scope:
    """The centres a run checks again (None: all) and the run whose results the others
    keep, with the reason, for the logs."""

    centres: tuple[str, ...] | None
    previous: str | None
    why: str


def checks_scope(con, ctx: CheckContext, *, with_gx: bool, full: bool = False) -> Scope:
    """Every centre on a first run, weekly, when asked, when the catalogue changed, after
    a key rotation or when most centres changed; otherwise the centres whose rows were
    written since the last run, those with a patient still in their first year (monthly
    calls expected depend on the date) and those the last run did not check."""
    last = con.execute(
        "SELECT run_id, checked_at FROM dq_runs ORDER BY run_seq DESC LIMIT 1"
    ).fetchall()
    if full or not last:
        return Scope(None, None, "asked for every centre" if full else "first quality run")
    previous, since = last[0]
    if ctx.now - since > dt.timedelta(days=FULL_EVERY_DAYS):
        return Scope(None, None, f"every centre at least every {FULL_EVERY_DAYS} days")
    wanted = {c.check_id for c in ex.CHECKS if with_gx or not c.expectations}
    found = con.execute(
        "SELECT DISTINCT check_id FROM dq_results WHERE run_id = ?", [previous]
    ).fetchall()
    moments = con.execute("SELECT count(*) FROM dq_centre_moments").fetchall()[0][0]
    if {r[0] for r in found} != wanted or not moments or _rekeyed(con, since):
        return Scope(None, None, "check catalogue, pseudonyms or kept moments changed")
    changed = _changed_centres(con, previous, since)
    everyone = _centres(con, ctx)
    if 2 * len(changed) > len(everyone):
        return Scope(None, None, f"{len(changed)} of {len(everyone)} centres changed")
    return Scope(tuple(sorted(changed)), previous, f"{len(changed)} of {len(everyone)} centres")


def _changed_centres(con, previous: str, since: dt.datetime) -> set[str]:
    rows = con.execute(
        """WITH later AS (SELECT run_id FROM runs WHERE started_at >= $since)
           SELECT centre_id FROM ingested_files WHERE run_id IN (SELECT run_id FROM later)
           UNION SELECT centre_id FROM quarantine
                 WHERE resolved_run_id IN (SELECT run_id FROM later)
           UNION SELECT centre_id FROM patients
                 WHERE inclusion_date > CAST($since AS DATE) - $window
           UNION (SELECT centre_id FROM patients UNION SELECT centre_id FROM ingested_files
                  EXCEPT SELECT centre_id FROM dq_results WHERE run_id = $previous)""",
        {"since": since, "window": OPEN_WINDOW_DAYS, "previous": previous},
    ).fetchall()
    return {r[0] for r in rows}


def _rekeyed(con, since: dt.datetime) -> bool:
    try:
        rows = con.execute("SELECT count(*) FROM key_rotations WHERE rotated_at >= ?", [since])
    except duckdb.Error:
        return False
    return bool(rows.fetchall()[0][0])


def lifecycle_reach(con, scope: Scope, results: pl.DataFrame) -> Reach:
    """Where the queries are looked for again: the centres re-checked, those whose result
    status changed since the last run (new thresholds turn missing items into queries or
    back) and, everywhere, the checks run on every centre. Every centre when the checks
    were, or when the last run did not complete its query log (it died, or predates
    ``dq_information``): what it would have kept is not there."""
    if scope.centres is None or scope.previous is None:
        return EVERYWHERE
    if not lifecycle_complete(con, scope.previous):
        return EVERYWHERE
    before = con.sql(
        "SELECT check_id, centre_id, status FROM dq_results WHERE run_id = ?",
        params=[scope.previous],
    ).pl()
    now = results.select("check_id", "centre_id", "status")
    compared = now.join(before, on=["check_id", "centre_id"], how="full", coalesce=True)
    changed = compared.filter(pl.col("status").ne_missing(pl.col("status_right")))
    centres = {*scope.centres, *changed["centre_id"]}
    return Reach(tuple(sorted(centres)), EVERY_RUN)


def with_carried(con, outcome: Outcome, scope: Scope) -> Outcome:
    """The checks run on some centres, completed by the last run's results (counts and
    queries) of the centres not checked again, and of the checks not run again in the
    centres checked (GX on a table that did not change there); the every-run checks are
    never carried."""
    if scope.centres is None or scope.previous is None:
        return outcome
    where = (
        "run_id = $previous AND NOT list_contains($every_run, check_id) "
        "AND NOT (list_contains($centres, centre_id) AND list_contains($ran, check_id))"
    )
    params = {
        "previous": scope.previous,
        "every_run": list(EVERY_RUN),
        "centres": list(scope.centres),
        "ran": list(outcome.ran),
    }
    counts = con.sql(
        f"SELECT {', '.join(qc.COUNTS_SCHEMA)} FROM dq_results WHERE {where}", params=params
    ).pl()
    queries = con.sql(
        f"SELECT {', '.join(qc.QUERY_SCHEMA)} FROM dq_queries WHERE {where}", params=params
    ).pl()
    ran = tuple(dict.fromkeys([*outcome.ran, *counts["check_id"].unique(maintain_order=True)]))
    return Outcome(
        counts=pl.concat([outcome.counts, counts.cast(qc.COUNTS_SCHEMA)]),
        queries=pl.concat([outcome.queries, queries.cast(qc.QUERY_SCHEMA)]),
        ran=ran,
        gx_digests=outcome.gx_digests,
    )

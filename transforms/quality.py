"""Data-quality monitoring: run the check catalogue per centre, store, score, trend, query.

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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from cohortflow.errors import CohortflowError
from schemas import expectations as ex
from transforms import quality_checks as qc
from transforms import quality_plausibility as qp
from transforms.quality_checks import CheckContext, Outcome
from transforms.quality_score import (
    Breach,
    breaches_of,
    load_results,
    rescore,
    score,
    scorecard,
    status,
    status_changes,
    trend,
)

__all__ = [
    "Breach",
    "QualityResult",
    "ensure_quality_tables",
    "load_results",
    "rescore",
    "run_quality",
    "scorecard",
    "status",
    "status_changes",
    "trend",
]

QUALITY_DDL = """
CREATE TABLE IF NOT EXISTS dq_runs (
    run_id VARCHAR PRIMARY KEY, run_seq BIGINT NOT NULL UNIQUE, checked_at TIMESTAMP NOT NULL,
    snapshot_id VARCHAR, cadence_days INTEGER, great_expectations BOOLEAN NOT NULL,
    n_results INTEGER NOT NULL, n_breaches INTEGER NOT NULL, report_path VARCHAR,
    data_docs_path VARCHAR
);
CREATE TABLE IF NOT EXISTS dq_results (
    run_id VARCHAR NOT NULL, run_seq BIGINT NOT NULL, check_id VARCHAR NOT NULL,
    category VARCHAR NOT NULL, subcategory VARCHAR, table_name VARCHAR NOT NULL,
    column_name VARCHAR, centre_id VARCHAR NOT NULL, n_checked BIGINT, n_violating BIGINT,
    pct_violating DOUBLE, threshold_pct DOUBLE, threshold_count BIGINT,
    status VARCHAR NOT NULL, observed VARCHAR, engine VARCHAR NOT NULL, unit VARCHAR,
    PRIMARY KEY (run_id, check_id, centre_id)
);
CREATE TABLE IF NOT EXISTS dq_queries (
    run_id VARCHAR NOT NULL, check_id VARCHAR NOT NULL, centre_id VARCHAR NOT NULL,
    patient_key VARCHAR, month BIGINT, field VARCHAR NOT NULL, problem VARCHAR NOT NULL,
    value VARCHAR
);
"""
QUERY_COLUMNS = ("centre_id", "patient_key", "month", "field", "problem", "value", "check_id")

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
    "plau_nprs_jump": qp.nprs_jump,
    "plau_call_timing": qp.call_timing,
    "plau_hads_distribution": qp.hads_distribution,
    "plau_sf12_distribution": qp.sf12_distribution,
    "plau_nprs_distribution": qp.nprs_distribution,
    "time_last_export": qp.last_export,
}


def ensure_quality_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create dq_runs, dq_results and dq_queries if they do not exist."""
    con.execute(QUALITY_DDL)


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
) -> QualityResult:
    """Run every check on the warehouse as it stands; store, report and return the results.

    Writes ``workspace_reports/<run_id>/``: ``quality.html`` (plots embedded),
    ``queries/<centre>_queries.csv`` and ``data_docs/`` (GX Data Docs). The analysis views
    must be current (``warehouse.refresh_views``). ``now`` dates the run (months since
    inclusion, days since a centre's last file); ``expected_centres`` that never sent a
    file are late. ``with_gx=False`` skips the GX suites (their checks are then absent).
    """
    from transforms import quality_report  # matplotlib: imported only to draw

    ensure_quality_tables(con)
    _require_views(con)
    ctx = CheckContext(_naive_utc(now), cadence_days, tuple(expected_centres))
    out_dir = workspace_reports / run_id
    docs = out_dir / "data_docs" if with_gx else None
    outcome = run_checks(con, ctx, docs, run_id)
    results = score(expand(outcome.counts, _centres(con, ctx), outcome.ran), thresholds)
    run_seq = store_run(con, run_id, ctx, results, outcome.queries, docs)
    queries = write_queries(outcome.queries, results, out_dir / "queries")
    card, breaches, changes = scorecard(results), breaches_of(results), status_changes(con, run_id)
    report = quality_report.write_report(
        out_dir / "quality.html",
        run_id=run_id,
        results=results,
        scorecard=card,
        completeness=qc.monthly_completeness(con, ctx.today),
        quarantine=quarantine_by_centre(con),
        trend=trend(con),
        changes=changes,
        data_docs=docs,
        queries=queries,
    )
    con.execute("UPDATE dq_runs SET report_path = ? WHERE run_id = ?", [str(report), run_id])
    markdown = quality_report.markdown(run_id, card, breaches, report)
    return QualityResult(
        run_id, run_seq, results, card, breaches, report, queries, markdown, docs, changes
    )


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
    """The DuckDB/polars checks, then (with ``docs``) the GX suites."""
    outcomes = [SQL_CHECKS[c.check_id](con, ctx) for c in ex.CHECKS if not c.expectations]
    if docs is not None:
        from transforms.quality_gx import run_gx_checks  # GX import: ~5 s

        outcomes.append(run_gx_checks(con, docs, run_name))
    return Outcome(
        counts=pl.concat([o.counts for o in outcomes]),
        queries=pl.concat([o.queries for o in outcomes]),
        ran=tuple(c for o in outcomes for c in o.ran),
    )


def _centres(con, ctx: CheckContext) -> list[str]:
    rows = con.execute(
        "SELECT centre_id FROM patients UNION SELECT centre_id FROM ingested_files"
    ).fetchall()
    return sorted({r[0] for r in rows} | set(ctx.expected_centres))


def catalogue() -> pl.DataFrame:
    """The check catalogue as a frame (one row per check, default thresholds)."""
    return pl.DataFrame(
        [
            {
                "check_id": c.check_id,
                "category": c.category,
                "subcategory": c.subcategory,
                "table_name": c.table,
                "column_name": c.column,
                "description": c.description,
                "unit": c.unit,
                "engine": c.engine,
                "threshold_pct": c.threshold.pct,
                "threshold_count": c.threshold.count,
            }
            for c in ex.CHECKS
        ],
        schema_overrides={"threshold_pct": pl.Float64, "threshold_count": pl.Int64},
    )


def expand(counts: pl.DataFrame, centres: list[str], ran: Iterable[str]) -> pl.DataFrame:
    """One row per (check run, centre): a centre without data has n_checked 0.

    A check that could not run (a GX exception: a count row for centre ``*``) has null
    counts in every centre, and the status 'error'.
    """
    checks = catalogue().filter(pl.col("check_id").is_in(list(ran)))
    grid = checks.join(pl.DataFrame({"centre_id": centres}), how="cross")
    errors = counts.filter(centre_id=qc.EVERY_CENTRE).select("check_id", error="observed")
    found = counts.filter(pl.col("centre_id") != qc.EVERY_CENTRE).with_columns(_found=pl.lit(True))
    joined = grid.join(found, on=["check_id", "centre_id"], how="left").join(
        errors, on="check_id", how="left"
    )
    missing, failed = (
        pl.col("_found").is_null(),
        pl.col("check_id").is_in(errors["check_id"].implode()),
    )
    return joined.with_columns(
        n_checked=pl.when(failed).then(None).when(missing).then(0).otherwise("n_checked"),
        n_violating=pl.when(failed).then(None).when(missing).then(0).otherwise("n_violating"),
        observed=pl.coalesce("error", "observed"),
    ).drop("_found", "error", "description")


def store_run(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    ctx: CheckContext,
    results: pl.DataFrame,
    queries: pl.DataFrame,
    docs: Path | None,
) -> int:
    """Write a run's results and queries in one transaction (a rerun replaces them)."""
    seq = _run_seq(con, run_id)
    rows = results.with_columns(run_id=pl.lit(run_id), run_seq=pl.lit(seq, pl.Int64))
    asked = queries.with_columns(run_id=pl.lit(run_id))
    run = {
        "run_id": run_id,
        "run_seq": seq,
        "checked_at": ctx.now,
        "snapshot_id": con.execute("SELECT max(snapshot_id) FROM views_built").fetchall()[0][0],
        "cadence_days": ctx.cadence_days,
        "great_expectations": docs is not None,
        "n_results": rows.height,
        "n_breaches": int((rows["status"] == "failed").sum()),
        "data_docs_path": str(docs) if docs else None,
    }
    con.register("dq_new_results", rows)
    con.register("dq_new_queries", asked)
    con.execute("BEGIN TRANSACTION")
    try:
        for table in ("dq_results", "dq_queries", "dq_runs"):
            con.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])
        names = ", ".join(run)  # our own column names
        con.execute(
            f"INSERT INTO dq_runs ({names}) VALUES ({', '.join('?' * len(run))})",
            list(run.values()),
        )
        con.execute("INSERT INTO dq_results BY NAME SELECT * FROM dq_new_results")
        con.execute("INSERT INTO dq_queries BY NAME SELECT * FROM dq_new_queries")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        con.unregister("dq_new_results")
        con.unregister("dq_new_queries")
    return seq


def _run_seq(con, run_id: str) -> int:
    """The run's sequence number: kept on a rerun, else the next one."""
    return con.execute(
        "SELECT coalesce((SELECT run_seq FROM dq_runs WHERE run_id = ?),"
        " (SELECT coalesce(max(run_seq), 0) + 1 FROM dq_runs))",
        [run_id],
    ).fetchall()[0][0]


def write_queries(queries: pl.DataFrame, results: pl.DataFrame, folder: Path) -> dict[str, Path]:
    """One CSV per centre with queries, to send back: pseudonyms only, never local ids.

    Each query carries the status of its check in that centre, so the centre can start
    with what breaches a threshold.
    """
    status = results.select("check_id", "centre_id", check_status="status")
    rows = queries.join(status, on=["check_id", "centre_id"], how="left")
    paths = {}
    for (centre,), part in rows.sort("centre_id").group_by("centre_id", maintain_order=True):
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{centre}_queries.csv"
        part.sort("check_status", "patient_key", "month", "check_id", nulls_last=True).select(
            *QUERY_COLUMNS, "check_status"
        ).write_csv(path)
        paths[centre] = path
    return paths


def quarantine_by_centre(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Rows quarantined at ingestion, by centre, form and rule (all runs), most first."""
    return con.sql(
        """SELECT centre_id, form, coalesce(column_name, '') AS column_name, rule,
                  count(DISTINCT (file_hash, record)) AS n_rows
           FROM quarantine GROUP BY ALL ORDER BY centre_id, n_rows DESC, form, rule"""
    ).pl()

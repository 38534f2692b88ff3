"""Data-quality monitoring end to end on a small simulated warehouse with injected problems.

GX is slow to import and run: the two quality runs happen once, in a module fixture.
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl
import pytest

from schemas.expectations import CHECKS, Threshold
from tests.nights import night
from transforms import warehouse
from transforms.quality import (
    QualityResult,
    load_results,
    rescore,
    run_quality,
    status_changes,
    trend,
)
from transforms.quality import checks as qc
from transforms.quality import plausibility as qp
from transforms.quality.store import store_run

pytestmark = pytest.mark.slow  # Great Expectations runs twice: 6 s of set-up

SILENT = "C99"  # expected but never sent a file


@dataclass
class Injected:
    """Where the fixture put each problem and what the checks must find."""

    jump_centre: str
    jump_key: str
    jump_month: int
    jumps_expected: int
    calls_centre: str
    calls_missing: int
    deleted: list[tuple[str, int]]
    dose_centre: str
    dose_key: str
    duplicate_centre: str
    late_centre: str
    no_events_centre: str


@dataclass
class Runs:
    con: duckdb.DuckDBPyConnection
    reports: Path
    first: QualityResult
    second: QualityResult
    injected: Injected
    workspace: Path


def _one(con, sql: str, params=()):
    return con.execute(sql, list(params)).fetchall()[0]


def _centres(con) -> list[str]:
    return [
        r[0] for r in con.execute("SELECT DISTINCT centre_id FROM patients ORDER BY 1").fetchall()
    ]


def _inject_jump(con, centre: str, ctx) -> tuple[str, int, int]:
    """A jump of >= 6 points into a patient's last observed month."""
    before = qp.nprs_jump(con, ctx).counts.filter(centre_id=centre)["n_violating"].sum()
    key, month, previous = _one(
        con,
        """SELECT patient_key, month, previous FROM (
               SELECT patient_key, month, max(month) OVER (PARTITION BY patient_key) AS last,
                      lag(nprs) OVER (PARTITION BY patient_key ORDER BY month) AS previous
               FROM follow_ups WHERE centre_id = ?)
           WHERE month = last AND previous <> 5 ORDER BY patient_key LIMIT 1""",
        [centre],
    )
    new = 10 if previous <= 4 else 0
    was = _one(con, "SELECT nprs FROM follow_ups WHERE patient_key = ? AND month = ?", [key, month])
    con.execute(
        "UPDATE follow_ups SET nprs = ? WHERE patient_key = ? AND month = ?", [new, key, month]
    )
    already = abs(was[0] - previous) >= 6
    return key, month, before + (0 if already else 1)


def _delete_calls(con, centre: str, ctx) -> tuple[int, list[tuple[str, int]]]:
    """Months 1-5 of the centre's patients who have a later call: 'lost' calls."""
    before = qc.monthly_calls(con, ctx).counts.filter(centre_id=centre)["n_violating"].sum()
    rows = con.execute(
        """SELECT patient_key, month FROM follow_ups f
           WHERE centre_id = ? AND month BETWEEN 1 AND 5 AND EXISTS (
               SELECT 1 FROM follow_ups l WHERE l.patient_key = f.patient_key AND l.month > 5)""",
        [centre],
    ).fetchall()
    for key, month in rows:
        con.execute("DELETE FROM follow_ups WHERE patient_key = ? AND month = ?", [key, month])
    return before + len(rows), rows


def _inject(con, now: dt.datetime) -> Injected:
    centres = _centres(con)
    ctx = qc.CheckContext(now)
    jump_key, jump_month, jumps = _inject_jump(con, centres[0], ctx)
    missing, deleted = _delete_calls(con, centres[1], ctx)
    dose_centre, dose_key, sequence = _one(
        con,
        "SELECT centre_id, patient_key, sequence FROM ketamine_administrations"
        " WHERE dose_mg IS NOT NULL AND centre_id NOT IN (?, ?)"
        " ORDER BY centre_id, patient_key, sequence LIMIT 1",
        centres[:2],
    )
    con.execute(
        "UPDATE ketamine_administrations SET dose_mg = 1500 WHERE patient_key = ? AND sequence = ?",
        [dose_key, sequence],
    )
    centres = [c for c in centres if c != dose_centre]
    con.execute("DELETE FROM adverse_events WHERE centre_id = ?", [centres[4]])
    # tables edited by hand, as no batch would: the views are rebuilt whole
    warehouse.refresh_views(con, warehouse.snapshot_id(con), whole=True)
    # a duplicated key in a materialised view (the loader keeps the tables' keys unique)
    con.execute(
        "INSERT INTO analysis_patients SELECT * FROM analysis_patients WHERE centre_id = ? LIMIT 1",
        [centres[2]],
    )
    con.execute(
        "UPDATE ingested_files SET ingested_at = ingested_at - INTERVAL 60 DAY WHERE centre_id = ?",
        [centres[3]],
    )
    return Injected(
        centres[0],
        jump_key,
        jump_month,
        jumps,
        centres[1],
        missing,
        deleted,
        dose_centre,
        dose_key,
        centres[2],
        centres[3],
        centres[4],
    )


@pytest.fixture(scope="module")
def runs(small_export_workspace, tmp_path_factory) -> Runs:
    ws = tmp_path_factory.mktemp("quality") / "ws"
    shutil.copytree(small_export_workspace, ws)
    con, snapshot = night(ws, "night-1")
    warehouse.refresh_views(con, snapshot)
    last_file = _one(con, "SELECT max(ingested_at) FROM ingested_files")[0]
    now = (last_file + dt.timedelta(days=1)).replace(tzinfo=dt.UTC)
    injected = _inject(con, now.replace(tzinfo=None))
    reports = ws / "reports"
    options = {"workspace_reports": reports, "now": now, "expected_centres": [SILENT]}
    first = run_quality(con, run_id="dq-1", **options)
    # the dose is corrected before the second run (the views are rebuilt: duplicate gone)
    con.execute("UPDATE ketamine_administrations SET dose_mg = 150 WHERE dose_mg = 1500")
    warehouse.refresh_views(con, warehouse.snapshot_id(con), whole=True)
    # a change written by hand, not by a night: no run records it, so every centre is checked
    second = run_quality(con, run_id="dq-2", full=True, **options)
    yield Runs(con, reports, first, second, injected, ws)
    con.close()


def _result(result: QualityResult, check_id: str, centre: str) -> dict:
    rows = result.results.filter(check_id=check_id, centre_id=centre)
    assert rows.height == 1, (check_id, centre)
    return rows.row(0, named=True)


def test_run_quality_finds_the_injected_nprs_jump_in_its_centre(runs):
    """It counts the jump in the right centre and queries that patient and month."""
    inj = runs.injected
    row = _result(runs.first, "plau_nprs_jump", inj.jump_centre)
    assert row["n_violating"] == inj.jumps_expected >= 1
    assert row["category"] == "plausibility"
    queries = runs.con.execute(
        "SELECT centre_id, month FROM dq_queries WHERE run_id = 'dq-1' "
        "AND check_id = 'plau_nprs_jump' AND patient_key = ?",
        [inj.jump_key],
    ).fetchall()
    assert (inj.jump_centre, inj.jump_month) in queries


def test_run_quality_counts_missing_monthly_calls_of_the_centre(runs):
    """It expects every month up to the last call and fails the centre that lost calls."""
    inj = runs.injected
    row = _result(runs.first, "comp_monthly_calls", inj.calls_centre)
    assert row["n_violating"] == inj.calls_missing
    assert row["status"] == "failed"
    assert row["category"] == "completeness"
    queried = set(
        runs.con.execute(
            "SELECT patient_key, month FROM dq_queries WHERE run_id = 'dq-1' "
            "AND check_id = 'comp_monthly_calls' AND centre_id = ?",
            [inj.calls_centre],
        ).fetchall()
    )
    assert set(inj.deleted) <= queried


def test_run_quality_flags_an_implausible_dose_through_great_expectations(runs):
    """GX finds the 1500 mg dose; the violation is attributed to its centre and patient."""
    inj = runs.injected
    row = _result(runs.first, "plau_dose_max", inj.dose_centre)
    assert (row["n_violating"], row["status"], row["engine"]) == (
        1,
        "failed",
        "great_expectations",
    )
    others = runs.first.results.filter(
        pl.col("check_id") == "plau_dose_max", pl.col("centre_id") != inj.dose_centre
    )
    assert others["n_violating"].sum() == 0
    query = runs.con.execute(
        "SELECT patient_key, value FROM dq_queries"
        " WHERE run_id = 'dq-1' AND check_id = 'plau_dose_max'"
    ).fetchall()
    assert query == [(inj.dose_key, "1500.0")]


def test_run_quality_splits_a_duplicate_key_by_centre(runs):
    """Both rows of a duplicated key count, in the centre they belong to."""
    row = _result(runs.first, "plau_unique_analysis_patients", runs.injected.duplicate_centre)
    assert (row["n_violating"], row["status"]) == (2, "failed")
    total = runs.first.results.filter(check_id="plau_unique_analysis_patients")
    assert total["n_violating"].sum() == 2


def test_run_quality_flags_late_and_silent_centres(runs):
    """A centre quiet for longer than the cadence, and one that never sent a file, are late."""
    late = _result(runs.first, "time_last_export", runs.injected.late_centre)
    assert late["status"] == "failed" and late["observed"] == "61 days since the last file"
    silent = _result(runs.first, "time_last_export", SILENT)
    assert silent["status"] == "failed" and silent["observed"] == "no file ever received"
    on_time = runs.first.results.filter(check_id="time_last_export", status="passed")[
        "centre_id"
    ].to_list()
    assert len(on_time) == len(_centres(runs.con)) - 1
    flagged = {(b.centre_id, b.check_id) for b in runs.first.breaches}
    assert {
        (runs.injected.late_centre, "time_last_export"),
        (SILENT, "time_last_export"),
    } <= flagged


def test_a_check_with_nothing_to_check_is_not_applicable(runs):
    """No adverse events, or no data at all: not_applicable, never passed."""
    row = _result(runs.first, "conf_adverse_events_type", runs.injected.no_events_centre)
    assert (row["n_checked"], row["status"]) == (0, "not_applicable")
    silent = runs.first.results.filter(centre_id=SILENT, category="conformance")
    assert set(silent["status"]) == {"not_applicable"}
    card = runs.first.scorecard.filter(centre_id=SILENT).row(0, named=True)
    assert card["conformance"] is None and card["timeliness"] == 0.0


def test_rescore_flips_status_without_rerunning(runs):
    """New thresholds give new statuses from the stored counts; nothing stored changes."""
    inj = runs.injected
    stored = load_results(runs.con, "dq-1")
    strict = rescore(runs.con, {"plau_nprs_jump": Threshold(count=0)}, run_id="dq-1")
    row = strict.filter(check_id="plau_nprs_jump", centre_id=inj.jump_centre).row(0, named=True)
    assert row["status"] == "failed" and row["threshold_count"] == 0
    lenient = rescore(runs.con, {"plau_dose_max": Threshold(pct=None, count=5)}, run_id="dq-1")
    dose = lenient.filter(check_id="plau_dose_max", centre_id=inj.dose_centre)
    assert dose["status"].item() == "passed"
    assert load_results(runs.con, "dq-1").equals(stored)


def test_results_are_stored_per_run_and_centre(runs):
    """Every check x centre, for each run, with its run sequence."""
    n_centres = len(_centres(runs.con)) + 1  # and the silent one
    per_run = runs.con.execute(
        "SELECT run_id, run_seq, count(*), count(DISTINCT check_id)"
        " FROM dq_results GROUP BY ALL ORDER BY 2"
    ).fetchall()
    assert per_run == [
        ("dq-1", 1, len(CHECKS) * n_centres, len(CHECKS)),
        ("dq-2", 2, len(CHECKS) * n_centres, len(CHECKS)),
    ]
    assert runs.first.run_seq == 1 and runs.second.run_seq == 2
    errors = runs.con.execute("SELECT count(*) FROM dq_results WHERE status = 'error'").fetchall()
    assert errors == [(0,)]


def test_trend_and_changes_between_two_runs(runs):
    """The corrected dose and the rebuilt view are resolved in the second run."""
    inj = runs.injected
    changes = status_changes(runs.con, "dq-2")
    resolved = {
        (r["centre_id"], r["check_id"]): (r["previous_status"], r["status"])
        for r in changes.iter_rows(named=True)
    }
    assert resolved[(inj.dose_centre, "plau_dose_max")] == ("failed", "passed")
    assert resolved[(inj.duplicate_centre, "plau_unique_analysis_patients")] == ("failed", "passed")
    assert runs.second.changes.equals(changes)
    history = trend(runs.con).filter(centre_id=inj.dose_centre, category="plausibility")
    assert history["run_seq"].to_list() == [1, 2]
    assert history["n_failed"].to_list()[1] == history["n_failed"].to_list()[0] - 1


def test_queries_csv_carry_pseudonyms_only(runs):
    """Per-centre CSVs name patients by pseudonym; no local id of the exports appears."""
    paths = runs.first.queries
    assert runs.injected.calls_centre in paths
    keys = {  # a quarantined row's patient may have no loaded inclusion record
        r[0]
        for r in runs.con.execute(
            "SELECT patient_key FROM patients UNION SELECT patient_key FROM quarantine"
        ).fetchall()
    }
    local_ids = pl.read_parquet(runs.workspace / "simulation" / "latent.parquet")["patient_id"]
    for centre, path in paths.items():
        frame = pl.read_csv(path, infer_schema=False)
        assert path.name == f"{centre}_queries.csv" and frame["query_id"].is_unique().all()
        assert set(frame["patient_key"].drop_nulls()) <= keys
        text = path.read_text()
        assert not any(local in text for local in local_ids), path
    assert "patient_id" not in pl.read_csv(paths[runs.injected.calls_centre]).columns


def test_report_has_scorecard_heatmap_and_gx_results_without_data_docs_link(runs):
    """One HTML page with the scorecard and the heatmap table; GX's Data Docs are built
    but not linked (offline they are unstyled and show whole tables passing)."""
    report = runs.second.report
    page = report.read_text()
    assert report == runs.reports / "dq-2" / "quality.html"
    assert 'id="scorecard"' in page and ">ALL<" in page
    assert '<table class="heat" aria-label="completeness heatmap">' in page
    assert "data_docs" not in page and "Centres needing action" in page
    assert (report.parent / "data_docs" / "index.html").exists()
    assert "| ALL |" in runs.second.markdown and "breaches" in runs.second.markdown
    stored = runs.con.execute("SELECT report_path FROM dq_runs WHERE run_id = 'dq-2'").fetchall()
    assert stored == [(str(report),)]


def test_storing_a_run_again_replaces_it(runs):
    """A rerun of the same run id keeps its sequence number and duplicates nothing."""
    queries = runs.con.sql("SELECT * EXCLUDE (run_id) FROM dq_queries WHERE run_id = 'dq-2'").pl()
    ctx = qc.CheckContext(dt.datetime(2026, 1, 1))
    before = runs.con.execute("SELECT count(*) FROM dq_results").fetchall()
    seq = store_run(runs.con, "dq-2", ctx, runs.second.results, queries, None)
    assert seq == 2
    assert runs.con.execute("SELECT count(*) FROM dq_results").fetchall() == before
    n_queries = runs.con.execute("SELECT count(*) FROM dq_queries WHERE run_id = 'dq-2'").fetchall()
    assert n_queries == [(queries.height,)]


def test_queries_of_the_last_runs_only_are_kept_per_run(runs):
    """dq_queries holds the query lists of the last KEEP_QUERY_RUNS runs (each run stores
    every centre's: unbounded otherwise); results and the query log keep every run."""
    from transforms.quality.store import KEEP_QUERY_RUNS

    con = duckdb.connect()  # a copy: the module's runs stay as they are for the others
    for table in ("dq_runs", "dq_results", "dq_queries", "views_built"):
        frame = runs.con.sql(f"SELECT * FROM {table}").pl()  # noqa: F841 - read by DuckDB
        con.execute(f"CREATE TABLE {table} AS SELECT * FROM frame")
    queries = con.sql("SELECT * EXCLUDE (run_id) FROM dq_queries WHERE run_id = 'dq-2'").pl()
    ctx = qc.CheckContext(dt.datetime(2026, 1, 1))
    names = [f"dq-{n}" for n in range(3, 3 + KEEP_QUERY_RUNS + 2)]  # runs 3 .. 10
    for name in names:
        store_run(con, name, ctx, runs.second.results, queries, None)
    kept = con.execute("SELECT DISTINCT run_id FROM dq_queries ORDER BY ALL").fetchall()
    assert [r[0] for r in kept] == sorted(names[-KEEP_QUERY_RUNS:])
    per_run = con.execute("SELECT count(*) FROM dq_queries WHERE run_id = 'dq-10'").fetchall()
    assert per_run == [(queries.height,)] and queries.height > 0
    results = con.execute("SELECT count(DISTINCT run_id) FROM dq_results").fetchall()
    assert results == [(2 + len(names),)]
    con.close()

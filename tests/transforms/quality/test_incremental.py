"""A quality run that checks only the centres whose data changed equals a full run."""

from __future__ import annotations

import datetime as dt
import shutil

import duckdb
import polars as pl

from schemas import expectations as ex
from tests.conftest import TEST_KEY
from tests.nights import corrected_export, night
from transforms import warehouse
from transforms.quality import ensure_quality_tables, run_quality
from transforms.quality.checks import CheckContext, only_centres
from transforms.quality.gx import table_digests
from transforms.quality.lifecycle import ESCALATE_AFTER_NIGHTS, EVERYWHERE, kept_information
from transforms.quality.outbox import write_outbound_files
from transforms.quality.run import Scope, checks_scope, gx_tables_to_validate, lifecycle_reach
from transforms.quality.score import score
from transforms.staging.mapping import load_all_mappings

KEY_COLUMNS = ["check_id", "centre_id", "n_checked", "n_violating", "observed", "status"]


def _quality(con, ws, run_id, now, **kwargs):
    return run_quality(
        con, run_id=run_id, workspace_reports=ws / "reports", now=now, with_gx=True, **kwargs
    )


def _queries(con, run_id):
    return con.sql(
        "SELECT * EXCLUDE (run_id) FROM dq_queries WHERE run_id = ? ORDER BY ALL", params=[run_id]
    ).pl()


def test_quality_rechecks_only_the_changed_centre_and_equals_a_full_run(workspace):
    """It checks C01 alone after C01's re-export, carries the other centres' results, and
    gives the same counts, statuses and queries as checking every centre again."""
    con, snapshot = night(workspace, "run-1")
    warehouse.refresh_views(con, snapshot)
    first_now = dt.datetime.now(dt.UTC)
    _quality(con, workspace, "run-1", first_now)
    corrected_export(workspace)
    con.close()
    con, snapshot = night(workspace, "run-2")
    warehouse.refresh_views(con, snapshot)
    now = dt.datetime.now(dt.UTC)
    naive = now.replace(tzinfo=None)
    scope = checks_scope(con, CheckContext(naive), with_gx=True)
    assert scope.centres == ("C01",) and scope.previous == "run-1"
    looked = _quality(con, workspace, "run-2", now)
    everywhere = _quality(con, workspace, "run-3", now, full=True)
    incremental, full = looked.results, everywhere.results
    said = looked.report.read_text(encoding="utf-8")
    assert "Checked again tonight: C01 (1 of 6 centres" in said
    assert "those of run run-1: their data did not change since" in said
    said = everywhere.report.read_text(encoding="utf-8")
    assert "Every centre checked tonight (asked for every centre)" in said
    con_results = incremental.select(KEY_COLUMNS).sort("check_id", "centre_id")
    assert con_results.equals(full.select(KEY_COLUMNS).sort("check_id", "centre_id"))
    assert incremental.height == full.height > 6 * 40
    assert _queries(con, "run-2").equals(_queries(con, "run-3"))
    assert _queries(con, "run-2").height > 0
    c01 = incremental.filter(pl.col("centre_id") == "C01", check_id="comp_monthly_calls")
    assert c01["n_checked"].item() > 0
    con.close()


def test_quality_scope_is_every_centre_when_nothing_was_checked_before_or_asked(workspace):
    """A first run, or full=True, checks every centre."""
    con, snapshot = night(workspace, "run-1")
    warehouse.refresh_views(con, snapshot)
    ctx = CheckContext(dt.datetime.now(dt.UTC).replace(tzinfo=None))
    ensure_quality_tables(con)
    warehouse_has_no_run = checks_scope(con, ctx, with_gx=False)
    assert warehouse_has_no_run.centres is None and warehouse_has_no_run.why == "first quality run"
    _quality(con, workspace, "run-1", dt.datetime.now(dt.UTC), full=True)
    assert checks_scope(con, ctx, with_gx=True, full=True).centres is None
    nothing_changed = checks_scope(con, ctx, with_gx=True)
    assert nothing_changed.centres == () and nothing_changed.previous == "run-1"
    con.close()


def _log(con) -> pl.DataFrame:
    return con.sql("SELECT * FROM dq_query_log ORDER BY query_id").pl()


def _flipping_threshold(results: pl.DataFrame, keep: set[str]) -> tuple[str, ex.Threshold]:
    """A completeness threshold under which some centres' status changes, not all, and
    none of ``keep``'s."""
    for check_id in ("comp_monthly_calls", "comp_retention_month12", "comp_hads_baseline"):
        rows = results.filter(check_id=check_id)
        for k in sorted(set(rows["n_violating"].drop_nulls().to_list())):
            limit = ex.Threshold(pct=None, count=k)
            after = score(rows, {check_id: limit})
            flipped = set(after.filter(pl.col("status") != rows["status"])["centre_id"])
            if flipped and not flipped & keep and len(flipped) < rows.height - len(keep):
                return check_id, limit
    raise AssertionError("no threshold flips some centres only")


def test_queries_beyond_the_rechecked_centres_are_kept_as_a_full_run_finds_them(workspace):
    """After C01's re-export under a new threshold, a run that looks again only at C01,
    at the centres whose status the threshold changed and at the every-run checks leaves
    the query log, the information lines and every centre's outbound files exactly as a
    run that looks everywhere: C01's corrected query closed, the other centres' queries a
    night older, one of C02's reaching escalation tonight, a centre never heard from
    still late."""
    con, snapshot = night(workspace, "run-1")
    warehouse.refresh_views(con, snapshot)
    first = _quality(con, workspace, "run-1", dt.datetime.now(dt.UTC), expected_centres=["C99"])
    check_id, limit = _flipping_threshold(first.results, keep={"C01", "C02"})
    escalating = con.execute(
        "SELECT min(query_id) FROM dq_query_log WHERE centre_id = 'C02' AND closed_run IS NULL"
    ).fetchall()[0][0]
    con.execute(  # opened six nights ago: the seventh escalates it
        "UPDATE dq_query_log SET nights_open = ? WHERE query_id = ?",
        [ESCALATE_AFTER_NIGHTS - 1, escalating],
    )
    corrected_export(workspace)
    con.close()
    con, snapshot = night(workspace, "run-2")
    warehouse.refresh_views(con, snapshot)
    con.close()
    shutil.copy(workspace / "warehouse.duckdb", workspace / "full.duckdb")

    now = dt.datetime.now(dt.UTC)
    kwargs = {"expected_centres": ["C99"], "thresholds": {check_id: limit}}
    with duckdb.connect(str(workspace / "warehouse.duckdb")) as con:
        scope = checks_scope(con, CheckContext(now.replace(tzinfo=None)), with_gx=True)
        looked = _quality(con, workspace, "run-2", now, **kwargs)
        reach = lifecycle_reach(con, scope, looked.results)
        scoped = _log(con), kept_information(con)
        con.execute("UPDATE dq_runs SET lifecycle_complete = NULL WHERE run_id = 'run-2'")
        died = Scope(("C01",), "run-2", "a run that died before its query log")
        assert lifecycle_reach(con, died, looked.results) == EVERYWHERE
    with duckdb.connect(str(workspace / "full.duckdb")) as con:
        everywhere = run_quality(
            con, run_id="run-2", workspace_reports=workspace / "full-reports", now=now,
            full=True, **kwargs,
        )  # fmt: skip
        full = _log(con), kept_information(con)

    assert scope.centres == ("C01",)
    assert "C01" in reach.centres and "C02" not in reach.centres
    assert len(reach.centres) < len(first.scorecard["centre_id"].unique()) - 2
    assert scoped[0].equals(full[0]) and scoped[1].equals(full[1])
    assert looked.open_queries.equals(everywhere.open_queries)
    log = scoped[0].filter(pl.col("closed_run").is_null())
    assert log.filter(query_id=escalating)["escalated"].to_list() == [True]
    assert log.filter(pl.col("centre_id") == "C02")["nights_open"].min() == 2
    assert log.filter(centre_id="C99", source="time_last_export").height == 1
    assert scoped[0].filter(closed_run="run-2").height > 0  # C01's fixes
    assert scoped[1].height > 0 and set(scoped[1]["centre_id"]) > set(reach.centres)
    mappings = load_all_mappings(workspace / "centres")
    for name, result in (("outbox", looked), ("outbox-full", everywhere)):
        write_outbound_files(
            workspace / name, result.open_queries, result.information,
            inbox=workspace / "inbox", mappings=mappings, secret=TEST_KEY,
        )  # fmt: skip
    written = sorted(
        p.relative_to(workspace / "outbox") for p in (workspace / "outbox").rglob("*.csv")
    )
    assert len(written) >= 6
    for path in written:
        assert (workspace / "outbox" / path).read_bytes() == (
            workspace / "outbox-full" / path
        ).read_bytes()


def test_gx_validates_again_only_the_tables_that_changed_in_the_centres_checked(workspace):
    """After C01 re-sends its follow-ups, GX validates C01's follow-up table again, not its
    questionnaires nor its patients (their rows and suites are as they were), and the
    run's Data Docs show just those; a changed suite, or a centre never validated, counts
    as changed."""
    con, snapshot = night(workspace, "run-1")
    warehouse.refresh_views(con, snapshot)
    _quality(con, workspace, "run-1", dt.datetime.now(dt.UTC))
    corrected_export(workspace)
    con.close()
    con, snapshot = night(workspace, "run-2")
    warehouse.refresh_views(con, snapshot)

    with only_centres(con, ("C01",)):
        digests = table_digests(con)
    tables = gx_tables_to_validate(con, digests, ("C01",))
    assert "follow_ups" in tables
    assert not {"patients", "hads", "sf12", "ketamine_administrations"} & set(tables)
    result = _quality(con, workspace, "run-2", dt.datetime.now(dt.UTC))
    suites = {p.parts[-4] for p in (result.data_docs / "validations").rglob("*.html")}
    assert suites == {f"cohortflow_{table}" for table in tables}

    con.execute("UPDATE dq_gx_digests SET suite = 'an older suite' WHERE table_name = 'hads'")
    assert gx_tables_to_validate(con, digests, ("C01",)) == ("hads",)
    con.execute("DELETE FROM dq_gx_digests WHERE centre_id = 'C01'")
    never = gx_tables_to_validate(con, digests, ("C01",))
    assert set(never) == set(digests["table_name"])  # every table C01 has rows in
    con.close()

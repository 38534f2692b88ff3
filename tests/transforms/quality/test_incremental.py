"""A quality run that checks only the centres whose data changed equals a full run."""

from __future__ import annotations

import datetime as dt

import polars as pl

from tests.nights import corrected_export, night
from transforms import warehouse
from transforms.quality import ensure_quality_tables, run_quality
from transforms.quality.checks import CheckContext
from transforms.quality.run import checks_scope

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
    incremental = _quality(con, workspace, "run-2", now).results
    full = _quality(con, workspace, "run-3", now, full=True).results
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

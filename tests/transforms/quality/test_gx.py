"""Great Expectations on an empty warehouse: nothing to check, and a check that cannot run."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import polars as pl
import pytest

from cohortflow.errors import CohortflowError
from transforms import warehouse
from transforms.derived import views
from transforms.quality import expand, run_quality
from transforms.quality.gx import run_gx_checks
from transforms.quality.score import score
from transforms.warehouse import views as stored

pytestmark = pytest.mark.slow  # Great Expectations: 5 s to import and run


def test_gx_checks_on_empty_tables_are_not_applicable_and_a_broken_one_is_error(tmp_path):
    """Empty tables give no counts (not_applicable); a missing column errors in every centre."""
    con = warehouse.connect(Path(":memory:"))
    stored.materialise_views(con, views.build_views(warehouse.current_tables(con)), "empty")
    con.execute("ALTER TABLE sf12_scored DROP COLUMN mcs12")
    outcome = run_gx_checks(con, tmp_path / "docs", "empty-run")
    results = score(expand(outcome.counts, ["C01", "C02"], outcome.ran))
    broken = results.filter(check_id="conf_sf12_scores")
    assert broken["status"].to_list() == ["error", "error"]
    assert "mcs12" in broken["observed"][0]
    others = results.filter(check_id="conf_hads_items")
    assert others["status"].to_list() == ["not_applicable", "not_applicable"]
    assert outcome.queries.is_empty()
    assert (tmp_path / "docs" / "index.html").exists()


def test_run_quality_needs_the_analysis_views(tmp_path):
    """A warehouse never refreshed gives a clear error, not a missing-table traceback."""
    con = warehouse.connect(Path(":memory:"))
    with pytest.raises(CohortflowError, match="no analysis views"):
        run_quality(con, run_id="r", workspace_reports=tmp_path, now=dt.datetime(2026, 1, 1))


def test_gx_accepts_any_run_id_of_ours(tmp_path, caplog):
    """A run id whose suffix dateutil reads as an impossible UTC offset (-82:12) once
    crashed GX's result store, then its Data Docs pages (an error GX logs and swallows,
    leaving pages out): GX gets a run name that reads as no date."""
    con = warehouse.connect(Path(":memory:"))
    stored.materialise_views(con, views.build_views(warehouse.current_tables(con)), "empty")
    with caplog.at_level(logging.ERROR, logger="great_expectations"):
        outcome = run_gx_checks(con, tmp_path / "docs", "20261127T040310Z-8212ad")
    assert outcome.queries.is_empty() and (tmp_path / "docs" / "index.html").exists()
    assert [r.getMessage()[:200] for r in caplog.records if r.levelno >= logging.ERROR] == []
    pages = list((tmp_path / "docs" / "validations").rglob("*.html"))
    assert pages and all("run-20261127T040310Z-8212ad" in str(p) for p in pages)


def test_gx_violations_name_their_centre_patient_month_and_value(tmp_path):
    """Each unexpected row GX finds becomes a query of its own centre, patient and month
    with its value, and the counts per centre are what GX checked (values, or rows for a
    key and a not-null expectation): rows written here, past the schemas, with their truth."""
    con = warehouse.connect(Path(":memory:"))
    stored.materialise_views(con, views.build_views(warehouse.current_tables(con)), "empty")
    con.execute(
        """INSERT INTO follow_ups VALUES
           ('P1', 'C01', 1, DATE '2017-02-01', 4, 'f', 1, 'r'),
           ('P2', 'C01', 2, DATE '2017-03-01', 11, 'f', 2, 'r'),
           ('P3', 'C02', 13, NULL, 5, 'g', 1, 'r'),
           ('P3', 'C02', 13, DATE '2018-02-01', 5, 'g', 2, 'r')"""
    )
    outcome = run_gx_checks(con, tmp_path / "docs", "violations")
    counts = {
        (r["check_id"], r["centre_id"]): (r["n_checked"], r["n_violating"])
        for r in outcome.counts.iter_rows(named=True)
    }
    assert counts[("conf_follow_ups_nprs", "C01")] == (2, 1)
    assert counts[("conf_follow_ups_nprs", "C02")] == (2, 0)
    assert counts[("conf_follow_ups_month", "C02")] == (2, 2)
    assert counts[("comp_call_date", "C02")] == (2, 1)
    assert counts[("plau_unique_follow_ups", "C01")] == (2, 0)
    assert counts[("plau_unique_follow_ups", "C02")] == (2, 2)
    found = outcome.queries.filter(pl.col("check_id").str.contains("follow_ups|call_date"))
    rows = sorted(
        (r["check_id"], r["centre_id"], r["patient_key"], r["month"], r["field"], r["value"])
        for r in found.iter_rows(named=True)
    )
    assert rows == [
        ("comp_call_date", "C02", "P3", 13, "call_date", None),
        ("conf_follow_ups_month", "C02", "P3", 13, "month", "13"),
        ("conf_follow_ups_month", "C02", "P3", 13, "month", "13"),
        ("conf_follow_ups_nprs", "C01", "P2", 2, "nprs", "11"),
        ("plau_unique_follow_ups", "C02", "P3", 13, "patient_key, month", None),
        ("plau_unique_follow_ups", "C02", "P3", 13, "patient_key, month", None),
    ]

"""A small simulated study, fitted and published once, with its views in a warehouse."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl
import pytest

from models.report import write_results_report
from models.suite import fit_and_publish_all
from tests.models.conftest import simulated_views
from transforms import warehouse
from transforms.warehouse.views import materialise_views

SNAPSHOT = "snap-report-test"
RUN = "20260101T020000Z-report"


@dataclass(frozen=True)
class Study:
    """A warehouse with views at SNAPSHOT, its results folder, and the report made of them."""

    con: duckdb.DuckDBPyConnection
    views: dict[str, pl.DataFrame]
    results: Path  # artifacts/<run>/
    report: Path  # reports/<run>/results.html
    seconds: float  # what writing the report took


@pytest.fixture(scope="package")
def study(tmp_path_factory) -> Study:
    """160 simulated patients (30 centres), every model fitted (lighter bootstrap and EM)."""
    import time

    root = tmp_path_factory.mktemp("report")
    views, _ = simulated_views(160, 11)
    con = warehouse.connect(Path(":memory:"))
    materialise_views(con, {k: v for k, v in views.items() if k != "adverse_events"}, SNAPSHOT)
    results = root / "artifacts" / RUN
    fit_and_publish_all(views, results, run_id=RUN, snapshot_id=SNAPSHOT, n_rep=50, n_starts=2)
    start = time.perf_counter()
    report = write_results_report(results, con, root / "reports" / RUN / "results.html")
    seconds = time.perf_counter() - start
    yield Study(con, views, results, report, seconds)
    con.close()

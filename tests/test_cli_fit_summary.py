"""What `cohortflow fit` prints: the headline as the night shows it, fit times, the report."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

from cohortflow.cli.summary import fit_summary
from models.suite import fit_and_publish_all
from tests.models.conftest import simulated_views


def fit_result(
    run_id, snapshot_id, primary=None, manifest=None, study=None, report=None, error=None
):
    """flows.fit.FitResult's fields, without importing Prefect into the test session (a
    process that imported Prefect uses its server: tests/flows/test_server.py)."""
    return SimpleNamespace(
        run_id=run_id,
        snapshot_id=snapshot_id,
        primary=primary,
        manifest=manifest,
        study=study,
        report=report,
        report_error=error,
    )


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    views, _ = simulated_views(120, 5)
    out = tmp_path_factory.mktemp("fit") / "artifacts" / "run-1"
    return fit_and_publish_all(views, out, run_id="run-1", snapshot_id="s1", n_rep=20, n_starts=1)


def test_fit_summary_prints_the_headline_fit_times_and_the_report(study, tmp_path):
    """It shows the primary model with p < 0.001 (never 0.0e+00), the secondary analyses,
    each model's fit time and the paths of the results and of the report."""
    report = tmp_path / "reports" / "run-1" / "results.html"
    result = fit_result("run-1", "s1", study.primary, study.manifest, study, report)
    text = fit_summary(result)
    assert "change in pain per month" in text and "p < 0.001" in text
    assert not re.search(r"p = \d\.\de[+-]\d\d", text) and "p = 0.000" not in text
    assert "time x depression (HADS-D >= 8)" in text
    seconds = study.fit_seconds
    assert f"primary {seconds['primary']:.2f} s, interaction {seconds['interaction']:.2f} s" in text
    assert f"  results     {study.manifest.parent}/  (parquet + CSV + manifest.json)" in text
    assert f"  report      {report}  (the study's results, open in a browser)" in text


def test_fit_summary_names_a_report_not_written_and_an_unchanged_snapshot(study):
    failed = fit_result("r", "s1", study.primary, study.manifest, study, None, "OSError: full")
    assert "  report      NOT WRITTEN: OSError: full" in fit_summary(failed)
    assert fit_summary(fit_result("r", "s1")) == (
        "Snapshot s1 is already published; --force refits it anyway."
    )

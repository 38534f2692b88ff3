"""The model flow: refits on demand, skips an already published snapshot unless forced."""

from __future__ import annotations

import pytest

from tests.conftest import TEST_KEY

pytestmark = pytest.mark.e2e


def test_fit_skips_a_published_snapshot_unless_forced(prefect_harness, workspace, monkeypatch):
    from flows.fit import fit
    from flows.nightly import nightly

    monkeypatch.setenv("COHORTFLOW_PSEUDONYM_KEY", TEST_KEY)
    monkeypatch.setenv("COHORTFLOW_SETTLE_SECONDS", "0")
    night = nightly(workspace=str(workspace))
    assert night.manifest is not None

    again = fit(workspace=str(workspace))
    assert not again.published and again.snapshot_id == night.snapshot_id

    forced = fit(workspace=str(workspace), force=True)
    assert forced.published and forced.manifest.exists()
    assert forced.manifest.parent.name == forced.run_id != night.run_id
    before = night.primary.effect_size["estimate"].item()
    assert forced.primary.effect_size["estimate"].item() == pytest.approx(before, rel=1e-9)


def test_fit_writes_the_results_report_and_survives_one_that_fails(
    prefect_harness, workspace, monkeypatch
):
    """Every fit writes reports/<run>/results.html for its snapshot; a report that cannot
    be drawn is named (the run's results are published all the same)."""
    import flows.fit
    from flows.fit import fit
    from flows.nightly import nightly

    monkeypatch.setenv("COHORTFLOW_PSEUDONYM_KEY", TEST_KEY)
    monkeypatch.setenv("COHORTFLOW_SETTLE_SECONDS", "0")
    night = nightly(workspace=str(workspace))
    assert night.results_report == workspace / "reports" / night.run_id / "results.html"
    assert f'<code id="snapshot">{night.snapshot_id}</code>' in night.results_report.read_text()

    def broken(*args, **kwargs):
        raise RuntimeError("no room to draw")

    monkeypatch.setattr(flows.fit, "write_results_report", broken)
    forced = fit(workspace=str(workspace), force=True)
    assert forced.published and forced.manifest.exists()
    assert forced.report is None and forced.report_error == "RuntimeError: no room to draw"
    assert not (workspace / "reports" / forced.run_id / "results.html").exists()

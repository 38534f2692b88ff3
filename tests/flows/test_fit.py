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

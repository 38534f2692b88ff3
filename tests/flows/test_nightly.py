"""The nightly flow end to end, on a small simulated cohort, under Prefect's harness."""

from __future__ import annotations

import json

import duckdb
import polars as pl
import pytest

from tests.conftest import TEST_KEY

pytestmark = pytest.mark.e2e


@pytest.fixture
def keyed(monkeypatch):
    monkeypatch.setenv("COHORTFLOW_PSEUDONYM_KEY", TEST_KEY)
    monkeypatch.setenv("COHORTFLOW_SETTLE_SECONDS", "0")  # the fixtures' files are fresh


def test_nightly_ingests_fits_publishes_then_does_nothing_new(prefect_harness, keyed, workspace):
    """First night: everything loaded and published. Second night: nothing new, no refit."""
    from prefect.artifacts import Artifact

    from flows.nightly import nightly

    state = nightly(workspace=str(workspace), return_state=True)
    assert state.is_completed()
    first = state.result()
    assert len(first.files) == 42 and all(f.status == "loaded" for f in first.files)
    assert first.primary is not None and first.manifest.exists()

    manifest = json.loads(first.manifest.read_text())
    assert manifest["snapshot_id"] == first.snapshot_id
    assert manifest["specification"]["lmm_primary"]["formula"] == "nprs ~ month"
    assert {"lmm_interaction", "trajectory", "mediation"} <= set(manifest["specification"])
    fixed = pl.read_parquet(first.manifest.parent / "lmm_primary_fixed_effects.parquet")
    assert fixed["term"].to_list() == ["Intercept", "month"]
    assert fixed.filter(term="month")["estimate"].item() < 0

    con = duckdb.connect(str(workspace / "warehouse.duckdb"), read_only=True)
    truth = json.loads((workspace / "simulation" / "truth.json").read_text())
    n_patients = con.execute("SELECT count(*) FROM patients").fetchall()[0][0]
    faults = pl.read_csv(workspace / "simulation" / "faults.csv").filter(form="inclusion")
    damaged = faults.filter(~pl.col("kind").is_in(["exact_duplicate", "conflicting_duplicate"]))
    conflicts = faults.filter(kind="conflicting_duplicate").height // 2  # original + its copy
    assert n_patients == truth["n_patients"] - damaged.height - conflicts
    con.close()
    table = Artifact.get("ingestion-per-file")
    assert table is not None and "C01" in str(table.data)

    second = nightly(workspace=str(workspace))
    assert second.files == [] and not second.data_changed and second.primary is None
    assert second.snapshot_id == first.snapshot_id


def test_nightly_keeps_other_centres_loading_when_a_file_is_bad(prefect_harness, keyed, workspace):
    """Invariant 4: a centre's unreadable file is rejected and reported; others load."""
    from flows.nightly import nightly

    bad_centre = sorted((workspace / "inbox").iterdir())[1]
    target = next(p for p in bad_centre.iterdir() if "suivi" in p.name)
    target.write_bytes(b"\x81\xfe\x00garbage\x00" * 10)
    result = nightly(workspace=str(workspace), fit_models=False)
    rejected = [f for f in result.files if f.status == "rejected"]
    assert [(f.centre_id, f.file_name) for f in rejected] == [(bad_centre.name, target.name)]
    assert rejected[0].error
    follow_ups = {
        f.centre_id for f in result.files if f.status == "loaded" and f.form == "follow_up"
    }
    assert len(follow_ups) == 5 and bad_centre.name not in follow_ups
    same_centre = [
        f for f in result.files if f.centre_id == bad_centre.name and f.status == "loaded"
    ]
    assert len(same_centre) == 6  # the centre's six other forms still load

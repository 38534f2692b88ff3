"""The one entry point: every model on a small simulated cohort, published with a manifest."""

from __future__ import annotations

import json

import polars as pl
import pytest

from models.mixed.centre import FAST_CENTRE_ENGINE
from models.mixed.fast import FAST_ENGINE
from models.mixed.reference import STATSMODELS_ENGINE
from models.suite import ANALYSES, MODEL_INPUTS, fit_and_publish_all
from tests.models.conftest import simulated_views

PRIMARY_FILES = {
    "lmm_primary_fixed_effects",
    "lmm_primary_variance_components",
    "lmm_primary_effect_size",
}


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    views, _ = simulated_views(150, 21, n_centres=10)
    out = tmp_path_factory.mktemp("artifacts") / "run-1"
    results = fit_and_publish_all(
        views, out, run_id="run-1", snapshot_id="snap-1", seed=3, n_rep=20, n_starts=2
    )
    return results, out


def test_fit_and_publish_all_writes_every_file_listed_in_the_manifest(published):
    results, out = published
    manifest = json.loads(results.manifest.read_text())
    assert results.manifest == out / "manifest.json"
    assert manifest["run_id"] == "run-1" and manifest["snapshot_id"] == "snap-1"
    files = manifest["files"]
    assert PRIMARY_FILES <= set(files)
    assert {p.stem for p in out.glob("*.parquet")} == set(files)
    for name, entry in files.items():
        table = pl.read_parquet(out / entry["file"])
        assert table.height == entry["rows"] > 0 and table.columns == entry["columns"], name


def test_fit_and_publish_all_records_each_models_specification(published):
    results, _ = published
    spec = json.loads(results.manifest.read_text())["specification"]
    assert spec["trajectory"]["seed"] == 3 and "BIC" in spec["trajectory"]["selection_rule"]
    assert "100 mg" in spec["mediation"]["exposure"]
    assert spec["lmm_interaction"]["formula"] == "nprs ~ month * depressed"
    steps = {"primary", "interaction", "centre", "trajectory", "mediation", "descriptives"}
    assert set(spec["fit_seconds"]) == steps and spec["failed"] == {}
    assert all(spec["convergence"].values())


def test_fit_and_publish_all_records_the_engine_that_fitted_each_mixed_model(published):
    results, _ = published
    spec = json.loads(results.manifest.read_text())["specification"]
    engines = {name: spec[name]["engine"] for name in ("lmm_primary", "lmm_interaction")}
    assert engines == {"lmm_primary": FAST_ENGINE, "lmm_interaction": FAST_ENGINE}
    assert spec["lmm_centre"]["engine"] == FAST_CENTRE_ENGINE
    assert "statsmodels" not in spec["lmm_centre"]["estimation"]


def test_fit_and_publish_all_by_statsmodels_says_so_in_the_manifest(tmp_path):
    """The reference engine's run names statsmodels for every mixed model it can fit; the
    centre model, which statsmodels cannot nest, is named as not fitted, with the reason."""
    views, _ = simulated_views(60, 9, n_centres=6)
    results = fit_and_publish_all(
        views, tmp_path, run_id="r", snapshot_id="s", n_rep=5, n_starts=1, engine="statsmodels"
    )
    spec = json.loads(results.manifest.read_text())["specification"]
    assert spec["lmm_primary"]["engine"] == spec["lmm_interaction"]["engine"] == STATSMODELS_ENGINE
    assert "statsmodels MixedLM cannot fit the centre model" in spec["failed"]["centre"]
    assert "engine" not in spec["lmm_centre"]


def test_analyses_run_primary_first_and_have_distinct_names():
    names = [analysis.NAME for analysis in ANALYSES]
    assert names[0] == "primary" and len(set(names)) == len(names) == 6


def test_fit_and_publish_all_returns_the_headline_numbers(published):
    results, out = published
    effect = pl.read_parquet(out / "lmm_primary_effect_size.parquet").row(0, named=True)
    assert results.effect_size["estimate"] == effect["estimate"]
    assert results.interaction["term"] == "month:depressed[T.True]"
    assert 1 <= results.trajectory_groups <= 5
    assert sum(results.trajectory_shares) == pytest.approx(1.0)
    assert {"indirect_acme", "direct_ade", "total", "proportion_mediated"} <= set(results.mediation)
    assert set(results.sf12) == {"pcs12", "mcs12"}


def test_fit_and_publish_all_publishes_the_rest_when_one_analysis_cannot_run(tmp_path):
    """Nobody has a one-year NPRS yet: mediation is skipped and named, the rest published."""
    views, _ = simulated_views(80, 5, n_centres=8)
    patients = views["analysis_patients"].with_columns(nprs_change=pl.lit(None, pl.Float64))
    results = fit_and_publish_all(
        views | {"analysis_patients": patients},
        tmp_path,
        run_id="r",
        snapshot_id="s",
        n_rep=10,
        n_starts=1,
    )
    manifest = json.loads(results.manifest.read_text())
    assert set(manifest["specification"]["failed"]) == {"mediation"}
    assert results.failed == manifest["specification"]["failed"] and results.mediation == {}
    assert PRIMARY_FILES | {"trajectory_groups", "sf12_change"} <= set(manifest["files"])
    assert not any(name.startswith("mediation") for name in manifest["files"])


def test_fit_and_publish_all_raises_when_the_primary_model_cannot_be_fitted(tmp_path):
    views, _ = simulated_views(40, 6, n_centres=4)
    empty = views["analysis_patient_months"].clear()
    with pytest.raises(Exception):  # noqa: B017 - whatever statsmodels raises on no data
        fit_and_publish_all(
            views | {"analysis_patient_months": empty}, tmp_path, run_id="r", snapshot_id="s"
        )
    assert not (tmp_path / "manifest.json").exists()


def test_fit_and_publish_all_twice_on_the_same_data_and_seed_gives_identical_files(
    published, tmp_path
):
    """Reproducible to the byte: the same snapshot and seed publish the same parquet."""
    _, first = published
    views, _ = simulated_views(150, 21, n_centres=10)
    fit_and_publish_all(
        views, tmp_path, run_id="run-1", snapshot_id="snap-1", seed=3, n_rep=20, n_starts=2
    )
    names = sorted(p.name for p in first.glob("*.parquet"))
    assert names == sorted(p.name for p in tmp_path.glob("*.parquet"))
    for name in names:
        assert (first / name).read_bytes() == (tmp_path / name).read_bytes(), name


def test_the_model_inputs_are_all_the_models_read(published, tmp_path):
    """The nightly fit loads only MODEL_INPUTS' views and columns: the published files
    are byte for byte those of a fit on the whole views."""
    _, first = published
    views, _ = simulated_views(150, 21, n_centres=10)
    inputs = {name: views[name].select(columns) for name, columns in MODEL_INPUTS.items()}
    fit_and_publish_all(
        inputs, tmp_path, run_id="run-1", snapshot_id="snap-1", seed=3, n_rep=20, n_starts=2
    )
    for path in sorted(first.glob("*.parquet")):
        assert path.read_bytes() == (tmp_path / path.name).read_bytes(), path.name

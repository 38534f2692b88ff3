"""The primary mixed model: the simulator's truth, the effect size, both engines."""

from __future__ import annotations

import polars as pl
import pytest

from models.analysis import Options
from models.mixed import fit_growth_model
from models.mixed.fast import FAST_ENGINE
from models.mixed.reference import STATSMODELS_ENGINE
from models.primary import NAME, fit, fit_primary_model, specification
from simulator.cohort import SimulationParameters, simulate_cohort
from tests.models.mixed.conftest import assert_same_fit

PAIN = {"outcome": "nprs", "time": "month", "group": "patient_key", "time_scale": 12}


@pytest.mark.parametrize(("n_patients", "seed"), [(329, 11), (329, 12), (200, 3)])
def test_fit_primary_model_recovers_the_simulated_slope(n_patients, seed):
    """The true population slope lies in the model's 95% CI, and the fit converged."""
    cohort = simulate_cohort(SimulationParameters(n_patients=n_patients, seed=seed))
    data = cohort.follow_ups.rename({"patient_id": "patient_key"})
    result = fit_primary_model(data)
    slope = result.fit.fixed_effects.filter(term="month").row(0, named=True)
    truth = cohort.truth()["expected_slope"]
    assert slope["ci_low"] < truth < slope["ci_high"]
    assert result.fit.converged
    assert result.fit.n_groups == n_patients


def test_fit_primary_model_effect_size_is_twelve_slopes_over_baseline_sd():
    cohort = simulate_cohort(SimulationParameters(n_patients=200, seed=3))
    data = cohort.follow_ups.rename({"patient_id": "patient_key"})
    result = fit_primary_model(data)
    es = result.effect_size.row(0, named=True)
    slope = result.fit.fixed_effects.filter(term="month").row(0, named=True)
    baseline_sd = data.filter(month=0)["nprs"].std()
    assert es["baseline_sd"] == pytest.approx(baseline_sd)
    assert es["estimate"] == pytest.approx(12 * slope["estimate"] / baseline_sd)
    assert es["ci_low"] == pytest.approx(12 * slope["ci_low"] / baseline_sd)
    assert es["ci_low"] < es["estimate"] < es["ci_high"]


def test_fit_primary_model_engines_agree_and_default_is_fast(study_views):
    months = study_views[0]["analysis_patient_months"]
    fast = fit_primary_model(months)
    reference = fit_primary_model(months, engine="statsmodels")
    data = months.select("patient_key", "month", "nprs").drop_nulls().to_pandas()
    direct = fit_growth_model(data, engine="fast", **PAIN)
    assert fast.fit.fixed_effects.equals(direct.fixed_effects)
    assert_same_fit(fast.fit, reference.fit, rel=1e-3)
    assert fast.fit.log_likelihood >= reference.fit.log_likelihood - 1e-9
    assert fast.effect_size.columns == reference.effect_size.columns
    assert fast.effect_size["estimate"][0] == pytest.approx(
        reference.effect_size["estimate"][0], rel=1e-4
    )


def test_fit_primary_model_refuses_an_unknown_engine():
    with pytest.raises(ValueError, match="engine"):
        fit_primary_model(
            pl.DataFrame({"patient_key": ["a"], "month": [0], "nprs": [5]}), engine="x"
        )


@pytest.mark.parametrize(
    ("engine", "text"), [("fast", FAST_ENGINE), ("statsmodels", STATSMODELS_ENGINE)]
)
def test_fit_records_the_engine_that_ran_in_the_specification(study_views, engine, text):
    """The manifest's lmm_primary entry names the engine that fitted it, with the counts."""
    views, _ = study_views
    options = Options(seed=1, n_rep=1, n_starts=1, engine=engine)
    fitted = fit(views, options)
    record = fitted.specification["lmm_primary"]
    assert record["engine"] == text
    assert record["n_patients"] == fitted.result.fit.n_groups == 329
    assert record["log_likelihood"] == fitted.result.fit.log_likelihood
    assert set(fitted.tables) == {
        f"lmm_primary_{t}" for t in ("fixed_effects", "variance_components", "effect_size")
    }
    assert "engine" not in specification(options)["lmm_primary"] and NAME == "primary"

"""The primary mixed model against lme4's published results and the simulator's truth."""

from __future__ import annotations

import polars as pl
import pytest

from models.lmm import ENGINES, fit_growth_model, fit_primary_model, growth_model_engine
from simulator.cohort import SimulationParameters, simulate_cohort
from tests.conftest import TEST_DATA

# lme4 1.1: lmer(Reaction ~ Days + (Days | Subject), sleepstudy), REML (summary(fm1)).
LME4_SLEEPSTUDY = {
    "Intercept": (251.405, 6.825),
    "Days": (10.467, 1.546),
    "intercept_var": 612.10,
    "slope_var": 35.07,
    "residual_var": 654.94,
    "reml_criterion": 1743.6,
}


@pytest.mark.parametrize("engine", ENGINES)
def test_fit_growth_model_reproduces_lme4_sleepstudy(engine):
    """Both engines (statsmodels MixedLM and the fast fit) give lme4's published values."""
    data = pl.read_csv(TEST_DATA / "sleepstudy.csv").to_pandas()
    fit_model = growth_model_engine(engine)
    fit = fit_model(data, outcome="Reaction", time="Days", group="Subject")
    fixed = {r["term"]: r for r in fit.fixed_effects.iter_rows(named=True)}
    for term in ("Intercept", "Days"):
        estimate, se = LME4_SLEEPSTUDY[term]
        assert fixed[term]["estimate"] == pytest.approx(estimate, abs=1e-3)
        assert fixed[term]["std_error"] == pytest.approx(se, abs=1e-3)
    variance = dict(fit.variance_components.iter_rows())
    for name in ("intercept_var", "slope_var", "residual_var"):
        assert variance[name] == pytest.approx(LME4_SLEEPSTUDY[name], rel=2e-4)
    assert -2 * fit.log_likelihood == pytest.approx(LME4_SLEEPSTUDY["reml_criterion"], abs=0.05)
    assert fit.converged and fit.n_groups == 18 and fit.n_observations == 180


def test_fit_growth_model_time_scale_is_an_exact_reparametrisation():
    """Fitting Days/7 (weeks) and transforming back gives the per-day results."""
    data = pl.read_csv(TEST_DATA / "sleepstudy.csv").to_pandas()
    days = fit_growth_model(data, outcome="Reaction", time="Days", group="Subject")
    weeks = fit_growth_model(data, outcome="Reaction", time="Days", group="Subject", time_scale=7)
    for a, b in zip(days.fixed_effects.iter_rows(), weeks.fixed_effects.iter_rows(), strict=True):
        assert a[1:] == pytest.approx(b[1:], rel=1e-4)
    assert days.variance_components["estimate"].to_list() == pytest.approx(
        weeks.variance_components["estimate"].to_list(), rel=1e-3
    )


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


def test_effect_size_is_twelve_slopes_over_baseline_sd():
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

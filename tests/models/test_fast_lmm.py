"""The fast sufficient-statistics fit against statsmodels MixedLM (the reference) and lme4.

statsmodels' default optimiser stops about 1e-5 to 1e-4 (relative) short of the optimum
in the variance components (its log-likelihood is then ~1e-7 below the fast fit's), so
the 1e-5 comparisons use MixedLM refitted with BFGS and gtol=1e-10, which reaches the
optimum; against the default fit we check that the fast optimum is at least as good.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import polars as pl
import pytest
import statsmodels.formula.api as smf
from statsmodels.regression.mixed_linear_model import MixedLMParams

from models import fast_lmm
from models.fast_lmm import fit_growth_model_fast
from models.lmm import (
    GrowthModelFit,
    fit_growth_model,
    fit_primary_model,
    tidy_fixed_effects,
    variance_components,
)
from simulator.cohort import SimulationParameters, simulate_cohort
from tests.conftest import TEST_DATA

SLEEP = {"outcome": "Reaction", "time": "Days", "group": "Subject"}
PAIN = {"outcome": "nprs", "time": "month", "group": "patient_id", "time_scale": 12}
REL = 1e-5


def sleepstudy() -> pd.DataFrame:
    return pl.read_csv(TEST_DATA / "sleepstudy.csv").to_pandas()


def cohort_rows(n_patients: int, seed: int) -> pd.DataFrame:
    cohort = simulate_cohort(SimulationParameters(n_patients=n_patients, seed=seed))
    return cohort.follow_ups.select("patient_id", "month", "nprs").to_pandas()


def unbalanced_rows(seed: int = 7) -> pd.DataFrame:
    """A cohort thinned at random: many patients keep one visit, some only month 0, and
    a few have every visit at one month (singular X_i'X_i)."""
    rng = np.random.default_rng(seed)
    rows = cohort_rows(300, seed)
    rows = rows[(rng.random(len(rows)) < 0.45) | (rows["month"] == 0)]
    first = rows.drop_duplicates("patient_id").sample(60, random_state=seed)
    rows = pd.concat([rows[~rows["patient_id"].isin(first["patient_id"])], first])
    same_month = first.head(5).assign(month=6, patient_id=lambda d: d["patient_id"] + "x")
    return pd.concat([rows, same_month, same_month.assign(nprs=lambda d: d["nprs"] - 1)])


def statsmodels_tight(
    data: pd.DataFrame, *, outcome, time, group, reml=True, time_scale=1.0, fixed=None
) -> tuple[GrowthModelFit, object]:
    """fit_growth_model's statsmodels fit, optimised to the optimum (BFGS, gtol 1e-10)."""
    data = data.assign(**{time: data[time] / time_scale})
    formula = f"{outcome} ~ {fixed or time}"
    model = smf.mixedlm(formula, data, groups=data[group], re_formula=f"~{time}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = model.fit(reml=reml, method="bfgs", gtol=1e-10, maxiter=1000)
    fit = GrowthModelFit(
        fixed_effects=tidy_fixed_effects(result, time=time, time_scale=time_scale),
        variance_components=variance_components(result, time_scale),
        n_observations=int(result.nobs),
        n_groups=len(result.random_effects),
        log_likelihood=float(result.llf),
        converged=bool(result.converged),
    )
    return fit, model


def assert_same_fit(fast: GrowthModelFit, ref: GrowthModelFit, rel: float = REL) -> None:
    """Estimates, SEs, z, p, CIs, variance components and log-likelihood, all within rel."""
    assert fast.fixed_effects.columns == ref.fixed_effects.columns
    assert fast.fixed_effects["term"].to_list() == ref.fixed_effects["term"].to_list()
    for column in ("estimate", "std_error", "z", "ci_low", "ci_high", "p_value"):
        expected = ref.fixed_effects[column].to_list()
        assert fast.fixed_effects[column].to_list() == pytest.approx(expected, rel=rel), column
    assert fast.variance_components["component"].equals(ref.variance_components["component"])
    expected = ref.variance_components["estimate"].to_list()
    assert fast.variance_components["estimate"].to_list() == pytest.approx(expected, rel=rel)
    assert fast.log_likelihood == pytest.approx(ref.log_likelihood, rel=1e-10)
    assert (fast.n_observations, fast.n_groups) == (ref.n_observations, ref.n_groups)
    assert fast.converged


@pytest.mark.parametrize("reml", [True, False])
def test_fast_fit_equals_statsmodels_on_sleepstudy(reml):
    ref, _ = statsmodels_tight(sleepstudy(), reml=reml, **SLEEP)
    assert_same_fit(fit_growth_model_fast(sleepstudy(), reml=reml, **SLEEP), ref)


@pytest.mark.parametrize("reml", [True, False])
def test_fast_fit_equals_statsmodels_on_a_simulated_cohort(reml):
    rows = cohort_rows(300, 5)
    ref, _ = statsmodels_tight(rows, reml=reml, **PAIN)
    assert_same_fit(fit_growth_model_fast(rows, reml=reml, **PAIN), ref)


def test_fast_fit_equals_statsmodels_with_one_visit_patients():
    rows = unbalanced_rows()
    visits = rows.groupby("patient_id").size()
    assert (visits == 1).sum() >= 60
    ref, _ = statsmodels_tight(rows, **PAIN)
    assert_same_fit(fit_growth_model_fast(rows, **PAIN), ref)


@pytest.mark.parametrize("reml", [True, False])
def test_likelihood_and_hessian_are_statsmodels_own(reml):
    """At the fast optimum and away from it, the closed forms equal MixedLM.loglike and
    MixedLM.hessian (whose inverse gives bse_fe) on unbalanced data."""
    rows = unbalanced_rows().assign(month=lambda d: d["month"] / 12)
    _, model = statsmodels_tight(rows, reml=reml, outcome="nprs", time="month", group="patient_id")
    sums = fast_lmm.patient_sums(rows, "nprs", "month", "patient_id", 1.0, reml)
    best, _ = fast_lmm.optimise(sums)
    for psi in (best.psi, best.psi * 1.3 + np.diag([0.1, 0.01])):
        p = fast_lmm.profile(psi, sums)
        params = MixedLMParams.from_components(p.beta + [sums.y_shift, 0], cov_re=psi)
        assert -0.5 * p.deviance == pytest.approx(model.loglike(params), rel=1e-12)
        hessian, _ = model.hessian(params)
        np.testing.assert_allclose(fast_lmm.loglike_hessian(p, sums), hessian, rtol=1e-9)


def test_fast_optimum_is_at_least_statsmodels_default():
    """statsmodels' default fit (what fit_growth_model runs) is no better than the fast one,
    and agrees with it to its own optimiser's precision."""
    rows = cohort_rows(300, 5)
    default = fit_growth_model(rows, **PAIN)
    fast = fit_growth_model_fast(rows, **PAIN)
    assert fast.log_likelihood >= default.log_likelihood - 1e-9
    assert_same_fit(fast, default, rel=1e-3)


def test_time_scale_is_an_exact_reparametrisation():
    rows = cohort_rows(200, 3)
    months = fit_growth_model_fast(rows, reml=False, **(PAIN | {"time_scale": 1}))
    years = fit_growth_model_fast(rows, reml=False, **PAIN)
    for name in ("fixed_effects", "variance_components"):
        a, b = getattr(months, name)["estimate"], getattr(years, name)["estimate"]
        assert a.to_list() == pytest.approx(b.to_list(), rel=1e-7)
    assert months.log_likelihood == pytest.approx(years.log_likelihood, rel=1e-12)


def test_primary_model_engines_agree_and_default_is_fast(study_views):
    months = study_views[0]["analysis_patient_months"]
    fast = fit_primary_model(months)
    reference = fit_primary_model(months, engine="statsmodels")
    data = months.select("patient_key", "month", "nprs").drop_nulls().to_pandas()
    direct = fit_growth_model_fast(data, **(PAIN | {"group": "patient_key"}))
    assert fast.fit.fixed_effects.equals(direct.fixed_effects)
    assert_same_fit(fast.fit, reference.fit, rel=1e-3)
    assert fast.fit.log_likelihood >= reference.fit.log_likelihood - 1e-9
    assert fast.effect_size.columns == reference.effect_size.columns
    assert fast.effect_size["estimate"][0] == pytest.approx(
        reference.effect_size["estimate"][0], rel=1e-4
    )


def test_wrong_engine_or_fixed_part_is_refused():
    with pytest.raises(ValueError, match="engine"):
        fit_primary_model(
            pl.DataFrame({"patient_key": ["a"], "month": [0], "nprs": [5]}), engine="x"
        )
    with pytest.raises(ValueError, match="only"):
        fit_growth_model_fast(sleepstudy(), fixed="Days * Subject", **SLEEP)

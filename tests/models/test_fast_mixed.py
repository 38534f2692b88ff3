"""The fast fit of any fixed part against statsmodels MixedLM (the reference).

As in test_fast_lmm: statsmodels' default optimiser stops short of the optimum, so the
comparisons use MixedLM refitted with BFGS and gtol=1e-10.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.regression.mixed_linear_model import MixedLMParams

from models import fast_mixed
from models.fast_lmm import fit_growth_model_fast
from models.fast_mixed import fit_mixed_fast
from models.interaction import FIXED, REDUCED, TERM, fit_interaction_model, interaction_data
from tests.models.test_fast_lmm import (
    SLEEP,
    assert_same_fit,
    sleepstudy,
    statsmodels_tight,
    unbalanced_rows,
)

PAIN = {"outcome": "nprs", "time": "month", "group": "patient_key", "time_scale": 12}


@pytest.fixture(scope="module")
def pain(study_views) -> pd.DataFrame:
    views, _ = study_views
    return interaction_data(views["analysis_patient_months"]).to_pandas()


def with_covariate(rows: pd.DataFrame, seed: int = 3) -> pd.DataFrame:
    """Unbalanced rows with a patient-level binary covariate and a row-level one."""
    rng = np.random.default_rng(seed)
    ids = rows["patient_id"].unique()
    flag = dict(zip(ids, rng.random(len(ids)) < 0.4, strict=True))
    return rows.assign(
        depressed=rows["patient_id"].map(flag), dose=rng.gamma(2.0, 50.0, len(rows))
    ).rename(columns={"patient_id": "patient_key"})


@pytest.mark.parametrize(
    ("fixed", "reml"), [(FIXED, True), (FIXED, False), (REDUCED, False), (REDUCED, True)]
)
def test_fast_fit_equals_statsmodels_on_the_interaction_models(pain, fixed, reml):
    ref, _ = statsmodels_tight(pain, fixed=fixed, reml=reml, **PAIN)
    assert_same_fit(fit_mixed_fast(pain, fixed=fixed, reml=reml, **PAIN), ref)


@pytest.mark.parametrize("reml", [True, False])
def test_fast_fit_equals_statsmodels_on_unbalanced_data_and_row_covariates(reml):
    rows = with_covariate(unbalanced_rows())
    fixed = "month * depressed + dose"
    ref, _ = statsmodels_tight(rows, fixed=fixed, reml=reml, **PAIN)
    assert_same_fit(fit_mixed_fast(rows, fixed=fixed, reml=reml, **PAIN), ref)


@pytest.mark.parametrize("reml", [True, False])
def test_likelihood_and_hessian_are_statsmodels_own(reml):
    """At the fast optimum and away from it, the closed forms equal MixedLM.loglike and
    MixedLM.hessian (whose inverse gives bse_fe), with X_i unlike Z_i."""
    rows = with_covariate(unbalanced_rows()).assign(month=lambda d: d["month"] / 12)
    fixed = "month * depressed + dose"
    kw = {"outcome": "nprs", "time": "month", "group": "patient_key"}
    _, model = statsmodels_tight(rows, fixed=fixed, reml=reml, **kw)
    sums = fast_mixed.design_sums(rows, f"nprs ~ {fixed}", "month", "patient_key", reml)
    best, converged = fast_mixed.optimise(sums)
    assert converged
    shift = np.where(np.array(sums.terms) == "Intercept", sums.y_shift, 0.0)
    for psi in (best.psi, best.psi * 1.3 + np.diag([0.1, 0.01])):
        p = fast_mixed.profile(psi, sums)
        params = MixedLMParams.from_components(p.beta + shift, cov_re=psi)
        assert -0.5 * p.deviance == pytest.approx(model.loglike(params), rel=1e-12)
        hessian, _ = model.hessian(params)
        np.testing.assert_allclose(fast_mixed.loglike_hessian(p, sums), hessian, rtol=1e-9)


@pytest.mark.parametrize("reml", [True, False])
def test_with_the_primary_fixed_part_it_is_the_primary_fast_fit(reml):
    """fixed = time: the same fit as models.fast_lmm (sleepstudy, lme4's example)."""
    general = fit_mixed_fast(sleepstudy(), reml=reml, **SLEEP)
    primary = fit_growth_model_fast(sleepstudy(), reml=reml, **SLEEP)
    assert_same_fit(general, primary, rel=1e-9)


def test_interaction_engines_agree_and_default_is_fast(study_views):
    views, _ = study_views
    months = views["analysis_patient_months"]
    fast = fit_interaction_model(months).test.row(0, named=True)
    reference = fit_interaction_model(months, engine="statsmodels").test.row(0, named=True)
    assert fast["term"] == reference["term"] == TERM
    # statsmodels' default fit stops short of the optimum: agreement to its precision
    for column in ("estimate", "std_error", "lrt_chi2"):
        assert fast[column] == pytest.approx(reference[column], rel=1e-3), column
    assert fast["ml_log_likelihood_full"] >= reference["ml_log_likelihood_full"] - 1e-6
    with pytest.raises(ValueError, match="engine"):
        fit_interaction_model(months, engine="lme4")


def test_a_formula_without_intercept_is_refused(pain):
    with pytest.raises(ValueError, match="intercept"):
        fit_mixed_fast(pain, fixed="month - 1", **PAIN)

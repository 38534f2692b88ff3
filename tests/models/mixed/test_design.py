"""The likelihood for any fixed part is statsmodels' own, and the line's on the line."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.regression.mixed_linear_model import MixedLMParams

from models.mixed import design
from models.mixed.fast import fit_growth_model_fast, fit_sums
from models.mixed.optimise import optimise
from models.mixed.sums import formula_sums
from tests.models.mixed.conftest import (
    SLEEP,
    assert_same_fit,
    sleepstudy,
    statsmodels_tight,
    unbalanced_rows,
    with_covariate,
)


@pytest.mark.parametrize("reml", [True, False])
def test_design_likelihood_and_hessian_are_statsmodels_own(reml):
    """At the fast optimum and away from it, the closed forms equal MixedLM.loglike and
    MixedLM.hessian (whose inverse gives bse_fe), with X_i unlike Z_i."""
    rows = with_covariate(unbalanced_rows()).assign(month=lambda d: d["month"] / 12)
    fixed = "month * depressed + dose"
    kw = {"outcome": "nprs", "time": "month", "group": "patient_key"}
    _, model = statsmodels_tight(rows, fixed=fixed, reml=reml, **kw)
    sums = formula_sums(rows, f"nprs ~ {fixed}", time="month", group="patient_key", reml=reml)
    best, converged = optimise(sums, design.DESIGN)
    assert converged
    shift = np.where(np.array(sums.terms) == "Intercept", sums.y_shift, 0.0)
    for psi in (best.psi, best.psi * 1.3 + np.diag([0.1, 0.01])):
        p = design.profile(psi, sums)
        params = MixedLMParams.from_components(p.beta + shift, cov_re=psi)
        assert -0.5 * p.deviance == pytest.approx(model.loglike(params), rel=1e-12)
        hessian, _ = model.hessian(params)
        np.testing.assert_allclose(design.loglike_hessian(p, sums), hessian, rtol=1e-9)


@pytest.mark.parametrize("reml", [True, False])
def test_design_likelihood_with_the_primary_fixed_part_is_the_line_fit(reml):
    """fixed = time through patsy and the general likelihood: the line likelihood's fit
    (sleepstudy, lme4's example), to 1e-9."""
    sums = formula_sums(sleepstudy(), "Reaction ~ Days", time="Days", group="Subject", reml=reml)
    assert sums.fixed is not None
    general = fit_sums(sums, time="Days")
    primary = fit_growth_model_fast(sleepstudy(), reml=reml, **SLEEP)
    assert_same_fit(general, primary, rel=1e-9)

"""The three-level fit (centre / patient / month): statsmodels' likelihood where statsmodels
can express the model (a diagonal patient covariance), lme4 for the fit (test_lme4_reference)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from statsmodels.regression.mixed_linear_model import MixedLMParams

from models.mixed import centre
from models.mixed.reference import CENTRE_OPTIMISERS, fit_quietly, three_level_model
from tests.models.conftest import months_with_centre_effect

MODEL = {"outcome": "nprs", "time": "month", "group": "patient_key", "cluster": "centre_id"}


def _statsmodels_model(months: pl.DataFrame):
    frame = months.select("centre_id", "patient_key", "month", "nprs").drop_nulls()
    data = frame.with_columns(pl.col("month") / 12).to_pandas()
    return data, three_level_model(data, **MODEL)


def _params(model, beta, t, psi, shift):
    components = {"patient": psi[0, 0], "patient_slope": psi[1, 1]}
    return MixedLMParams.from_components(
        beta + [shift, 0.0],
        cov_re=np.array([[t]]),
        vcomp=np.array([components[n] for n in model.exog_vc.names]),
    )


@pytest.mark.parametrize("centre_sd", [0.0, 1.0])
def test_centre_likelihood_is_statsmodels_own_at_diagonal_points(centre_sd):
    """With the intercept-slope covariance at 0 (the most statsmodels can nest in a
    centre), the nested Woodbury likelihood equals MixedLM.loglike, and the fixed-effects
    block of MixedLM.hessian gives our SEs (lme4's convention)."""
    data, model = _statsmodels_model(months_with_centre_effect(centre_sd))
    fit_quietly(model, reml=True, method=CENTRE_OPTIMISERS)  # sets the state loglike reads
    sums = centre.centre_sums(data, reml=True, **MODEL)
    shift = sums.patients.y_shift
    for t, psi in ((0.05, np.diag([3.0, 0.6])), (0.4, np.diag([2.5, 0.9]))):
        p = centre.profile(t, psi, sums)
        params = _params(model, p.beta, t, psi, shift)
        expected = model.loglike(params, profile_fe=False)
        assert -0.5 * p.deviance == pytest.approx(expected, rel=1e-12)
        hessian, _ = model.hessian(params)
        expected_se = np.sqrt(np.diag(np.linalg.inv(-hessian[:2, :2])))
        assert np.sqrt(np.diag(np.linalg.inv(p.s)) * p.q / sums.patients.df) == pytest.approx(
            expected_se, rel=1e-9
        )


def test_centre_optimum_beats_the_diagonal_model():
    """The unstructured covariance nests the diagonal one: its optimum is at least as good
    as statsmodels' fit without the intercept-slope covariance."""
    data, model = _statsmodels_model(months_with_centre_effect(0.5))
    theta, best, converged = centre.optimise(centre.centre_sums(data, reml=True, **MODEL))
    reference_fit, _ = fit_quietly(model, reml=True, method=CENTRE_OPTIMISERS)
    assert converged and -0.5 * best.deviance >= reference_fit.llf - 1e-8
    t, psi = centre.relative(theta)
    assert t > 0 and abs(psi[0, 1]) > 0


def test_centre_boundary_is_lme4s_rule():
    """A relative SD below 1e-4 (the slope's in months) is on the boundary."""
    assert centre.centre_boundary(np.array([0.0, 1.2, 0.1, 0.5]), 12) == ("centre_intercept_var",)
    assert centre.centre_boundary(np.array([2e-4, 1.2, 0.1, 0.5]), 12) == ()
    assert centre.centre_boundary(np.array([0.3, 1.2, 0.1, 1e-3]), 12) == ("slope_var",)


def test_centre_sums_refuse_a_patient_in_two_centres():
    data, _ = _statsmodels_model(months_with_centre_effect(0.0))
    data.loc[0, "centre_id"] = "C99"
    with pytest.raises(ValueError, match="more than one centre"):
        centre.centre_sums(data, reml=True, **MODEL)

"""The three-level fit (centre / patient / month): statsmodels' likelihood and SEs."""

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


def _params(model, beta, variances, shift):
    components = {"patient": variances[1], "patient_slope": variances[2]}
    return MixedLMParams.from_components(
        beta + [shift, 0.0],
        cov_re=np.array([[variances[0]]]),
        vcomp=np.array([components[n] for n in model.exog_vc.names]),
    )


@pytest.mark.parametrize("centre_sd", [0.0, 1.0])
def test_centre_likelihood_and_standard_errors_are_statsmodels_own(centre_sd):
    """At the fast optimum and away from it, the nested Woodbury likelihood equals
    MixedLM.loglike; the SEs equal those of MixedLM.hessian at the same point."""
    data, model = _statsmodels_model(months_with_centre_effect(centre_sd))
    fit_quietly(model, reml=True, method=CENTRE_OPTIMISERS)  # sets the state loglike reads
    sums = centre.centre_sums(data, reml=True, **MODEL)
    variances, best, converged = centre.optimise(sums)
    assert converged
    shift = sums.patients.y_shift
    for point in (variances, variances * 1.5 + [0.2, 0.1, 0.05]):
        p = centre.profile(point, sums)
        expected = model.loglike(_params(model, p.beta, point, shift), profile_fe=False)
        assert -0.5 * p.deviance == pytest.approx(expected, rel=1e-12)
    hessian, _ = model.hessian(_params(model, best.beta, variances, shift))
    expected_se = np.sqrt(np.diag(np.linalg.inv(-hessian)))[:2]
    se = centre.fixed_effect_se(best.beta, variances, sums)
    np.testing.assert_allclose(se, expected_se, rtol=1e-5)


@pytest.mark.parametrize("centre_sd", [0.0, 1.0])
def test_centre_optimum_is_at_least_statsmodels(centre_sd):
    data, model = _statsmodels_model(months_with_centre_effect(centre_sd))
    _, best, _ = centre.optimise(centre.centre_sums(data, reml=True, **MODEL))
    reference_fit, _ = fit_quietly(model, reml=True, method=CENTRE_OPTIMISERS)
    assert -0.5 * best.deviance >= reference_fit.llf - 1e-8


def test_centre_sums_refuse_a_patient_in_two_centres():
    data, _ = _statsmodels_model(months_with_centre_effect(0.0))
    data.loc[0, "centre_id"] = "C99"
    with pytest.raises(ValueError, match="more than one centre"):
        centre.centre_sums(data, reml=True, **MODEL)

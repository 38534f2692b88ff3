"""Centre as a further random level: no centre effect in the simulator, one added here."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import statsmodels.formula.api as smf
from statsmodels.regression.mixed_linear_model import MixedLMParams

from models import fast_centre
from models.centre import OPTIMISERS, VC_FORMULA, fit_centre_model
from models.lmm import fit_primary_model, fit_quietly
from tests.models.conftest import simulated_views


def _months(centre_sd: float) -> pl.DataFrame:
    views, _ = simulated_views(300, 8)
    months = views["analysis_patient_months"]
    centres = months["centre_id"].unique().sort()
    shift = np.random.default_rng(1).normal(0, centre_sd, centres.len())
    offsets = pl.DataFrame({"centre_id": centres, "offset": shift})
    return months.join(offsets, on="centre_id").with_columns(pl.col("nprs") + pl.col("offset"))


def test_fit_centre_model_finds_no_centre_variance_when_there_is_none():
    months = _months(0.0)
    result = fit_centre_model(months)
    variance = dict(result.variance_components.iter_rows())
    assert variance["centre_intercept_var"] < 0.1
    assert variance["patient_intercept_var"] > 1.0
    slope = result.fixed_effects.filter(term="month")["estimate"].item()
    primary = fit_primary_model(months).fit.fixed_effects.filter(term="month")
    assert slope == pytest.approx(primary["estimate"].item(), abs=0.01)
    assert (result.n_centres, result.n_patients) == (30, 300)


def test_fit_centre_model_recovers_an_added_centre_effect():
    """Centre offsets of SD 1.0 (variance 1) added to NPRS are found (30 centres: rough)."""
    result = fit_centre_model(_months(1.0))
    variance = dict(result.variance_components.iter_rows())
    assert 0.4 < variance["centre_intercept_var"] < 2.0


def _statsmodels_model(months: pl.DataFrame):
    frame = months.select("centre_id", "patient_key", "month", "nprs").drop_nulls()
    data = frame.with_columns(pl.col("month") / 12).to_pandas()
    model = smf.mixedlm(
        "nprs ~ month", data, groups="centre_id", re_formula="1", vc_formula=VC_FORMULA
    )
    return data, model


def _params(model, beta, variances, shift):
    components = {"patient": variances[1], "patient_slope": variances[2]}
    return MixedLMParams.from_components(
        beta + [shift, 0.0],
        cov_re=np.array([[variances[0]]]),
        vcomp=np.array([components[n] for n in model.exog_vc.names]),
    )


@pytest.mark.parametrize("centre_sd", [0.0, 1.0])
def test_fast_likelihood_and_standard_errors_are_statsmodels_own(centre_sd):
    """At the fast optimum and away from it, the nested Woodbury likelihood equals
    MixedLM.loglike; the SEs equal those of MixedLM.hessian at the same point."""
    data, model = _statsmodels_model(_months(centre_sd))
    fit_quietly(model, reml=True, method=OPTIMISERS)  # sets the state loglike reads
    sums = fast_centre.centre_sums(data, "nprs", "month", reml=True)
    variances, best, converged = fast_centre.fit(sums)
    assert converged
    shift = sums.patients.y_shift
    for point in (variances, variances * 1.5 + [0.2, 0.1, 0.05]):
        p = fast_centre.profile(point, sums)
        expected = model.loglike(_params(model, p.beta, point, shift), profile_fe=False)
        assert -0.5 * p.deviance == pytest.approx(expected, rel=1e-12)
    hessian, _ = model.hessian(_params(model, best.beta, variances, shift))
    expected_se = np.sqrt(np.diag(np.linalg.inv(-hessian)))[:2]
    se = fast_centre.fixed_effect_se(best.beta, variances, sums)
    np.testing.assert_allclose(se, expected_se, rtol=1e-5)


@pytest.mark.parametrize("centre_sd", [0.0, 1.0])
def test_fast_fit_is_at_least_statsmodels_and_agrees_with_it(centre_sd):
    months = _months(centre_sd)
    fast = fit_centre_model(months)
    reference = fit_centre_model(months, engine="statsmodels")
    assert fast.converged and reference.converged
    for column in ("estimate", "std_error"):
        np.testing.assert_allclose(
            fast.fixed_effects[column], reference.fixed_effects[column], rtol=5e-3
        )
    data, model = _statsmodels_model(months)
    sums = fast_centre.centre_sums(data, "nprs", "month", reml=True)
    _, best, _ = fast_centre.fit(sums)
    reference_fit, _ = fit_quietly(model, reml=True, method=OPTIMISERS)
    assert -0.5 * best.deviance >= reference_fit.llf - 1e-8
    assert (fast.n_centres, fast.n_patients) == (reference.n_centres, reference.n_patients)


def test_a_patient_in_two_centres_or_an_unknown_engine_is_refused():
    months = _months(0.0)
    moved = months.with_columns(
        centre_id=pl.when(pl.int_range(pl.len()) == 0).then(pl.lit("C99")).otherwise("centre_id")
    )
    with pytest.raises(ValueError, match="more than one centre"):
        fit_centre_model(moved)
    with pytest.raises(ValueError, match="engine"):
        fit_centre_model(months, engine="lme4")

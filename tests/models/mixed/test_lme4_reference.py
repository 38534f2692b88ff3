"""Both mixed-model fits against lme4 and lmerTest, run once on data kept in tests/data.

scripts/r/lmm_reference.R fitted each model (tight tolerances); here the fits run
without R. Two checks: (1) at lme4's own theta, our likelihood, fixed effects, SEs and
Satterthwaite df are lme4's and lmerTest's (to 1e-8, 1e-9, 1e-7, 1e-4: df come from
numerical derivatives on both sides); (2) at our optimum, the log-likelihood is at least
lme4's (lme4 stops up to 3.5e-6 short on these data, with convergence warnings) and the
estimates agree within that optimiser gap (fixed effects 1e-4, SEs 2e-4, df 1e-3,
variances 1e-3, relative), the singular flag exactly.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import polars as pl
import pytest

from models.mixed import fit_growth_model, fit_three_level_model
from models.mixed.design import DESIGN
from models.mixed.line import LINE
from models.mixed.optimise import fixed_effect_inference, psi_of
from models.mixed.sums import design_sums
from models.mixed.tables import GrowthModelFit, reml_time_offset, time_factors
from tests.conftest import TEST_DATA

R = json.loads((TEST_DATA / "r_reference_lmm.json").read_text())
PAIN = {"outcome": "nprs", "time": "month", "group": "patient_key", "time_scale": 12}
# lme4's VarCorr rows (var1, var2) -> our component names
GROWTH = {
    ("(Intercept)", None): "intercept_var",
    ("month", None): "slope_var",
    ("(Intercept)", "month"): "intercept_slope_cov",
    (None, None): "residual_var",
}


def _csv(name: str) -> pd.DataFrame:
    return pl.read_csv(TEST_DATA / name).to_pandas()


def _growth(name: str, **kwargs) -> GrowthModelFit:
    return fit_growth_model(_csv(name), **(PAIN | kwargs))


def _centre(name: str) -> GrowthModelFit:
    data = _csv(name).assign(month=lambda d: d["month"] * (1 / 12))  # as models.centre
    return fit_three_level_model(
        data,
        outcome="nprs",
        time="month",
        group="patient_key",
        cluster="centre_id",
        time_scale=12,
    )


FITS = {
    "sleepstudy": lambda: fit_growth_model(
        _csv("sleepstudy.csv"), outcome="Reaction", time="Days", group="Subject"
    ),
    "sleepstudy_40_dropped": lambda: fit_growth_model(
        _csv("sleepstudy.csv").iloc[40:], outcome="Reaction", time="Days", group="Subject"
    ),
    "primary": lambda: _growth("lmm_cohort.csv"),
    "interaction": lambda: _growth("lmm_cohort.csv", fixed="month * depressed"),
    "interaction_full_ml": lambda: _growth("lmm_cohort.csv", fixed="month * depressed", reml=False),
    "interaction_reduced_ml": lambda: _growth(
        "lmm_cohort.csv", fixed="month + depressed", reml=False
    ),
    "centre_none": lambda: _centre("lmm_centre_none.csv"),
    "centre_effect": lambda: _centre("lmm_centre_effect.csv"),
    "dyestuff2": lambda: fit_growth_model(
        _csv("dyestuff2.csv"), outcome="Yield", time="sample", group="Batch"
    ),
}


def _variances(reference: dict) -> dict[str, float]:
    """lme4's VarCorr as our components (the slope's name is the model's time)."""
    vc = reference["varcorr"]
    out = {}
    for grp, var1, var2, value in zip(vc["grp"], vc["var1"], vc["var2"], vc["vcov"], strict=True):
        key = (var1, var2) if var1 != "Days" and var1 != "sample" else ("month", var2)
        key = (key[0], "month") if var2 in ("Days", "sample") else key
        name = GROWTH[key]
        if grp == "centre_id":
            name = "centre_intercept_var"
        elif ":" in grp and name == "intercept_var":
            name = "patient_intercept_var"
        out[name] = value
    return out


@pytest.fixture(scope="module", params=list(FITS))
def pair(request) -> tuple[GrowthModelFit, dict]:
    return FITS[request.param](), R[request.param]


def test_fixed_effects_equal_lmer_and_lmertest(pair):
    ours, reference = pair
    fixed, ref = ours.fixed_effects, reference["fixed"]
    assert fixed["estimate"].to_list() == pytest.approx(ref["estimate"], rel=1e-4, abs=1e-9)
    assert fixed["std_error"].to_list() == pytest.approx(ref["std_error"], rel=2e-4)
    assert fixed["df"].to_list() == pytest.approx(ref["df"], rel=1e-3)
    assert fixed["p_value"].to_list() == pytest.approx(ref["p_value"], rel=1e-2, abs=1e-12)
    assert ours.n_observations == reference["n_obs"]


def test_variance_components_and_log_likelihood_equal_lmer(pair):
    ours, reference = pair
    variances = dict(ours.variance_components.select("component", "estimate").iter_rows())
    expected = _variances(reference)
    assert set(variances) == set(expected)
    for name, value in expected.items():
        assert variances[name] == pytest.approx(value, rel=1e-3, abs=1e-6), name
    assert ours.log_likelihood == pytest.approx(reference["log_likelihood"], abs=1e-5)
    assert ours.log_likelihood >= reference["log_likelihood"] - 1e-8  # at least lme4's optimum


def test_singular_flag_is_lme4_is_singular(pair):
    ours, reference = pair
    assert ours.singular == reference["singular"]
    assert ours.variance_components["at_boundary"].any() == reference["singular"]


def test_singular_fits_are_the_ones_lme4_flags():
    """The cases themselves: Dyestuff2 and a cohort without centre effect are singular."""
    assert R["dyestuff2"]["singular"] and R["centre_none"]["singular"]
    assert not R["centre_effect"]["singular"] and not R["primary"]["singular"]
    centre = FITS["centre_none"]()
    assert centre.boundary == ("centre_intercept_var",)
    assert centre.variance_components.filter(at_boundary=True)["estimate"].item() < 1e-12


def test_interaction_lrt_equals_anova():
    full, reduced = FITS["interaction_full_ml"](), FITS["interaction_reduced_ml"]()
    chi2 = 2 * (full.log_likelihood - reduced.log_likelihood)
    assert chi2 == pytest.approx(R["interaction_lrt"]["chi2"], rel=1e-6)


AT_THETA = {  # name: (data, fit arguments, time scale of our fit)
    "sleepstudy": ("sleepstudy.csv", {"outcome": "Reaction", "time": "Days", "group": "Subject"}),
    "primary": ("lmm_cohort.csv", PAIN),
    "interaction": ("lmm_cohort.csv", PAIN | {"fixed": "month * depressed"}),
    "interaction_full_ml": ("lmm_cohort.csv", PAIN | {"fixed": "month * depressed"}),
}


@pytest.mark.parametrize("name", list(AT_THETA))
def test_likelihood_estimates_ses_and_df_at_lme4s_theta_are_lme4s(name):
    """The same functions: evaluated where lme4 stopped, we get lme4's numbers."""
    file, arguments = AT_THETA[name]
    reference = R[name]
    scale = arguments.get("time_scale", 1.0)
    sums = design_sums(_csv(file), reml=reference["reml"], **arguments)
    likelihood = LINE if sums.fixed is None else DESIGN
    theta = np.array(reference["theta"]) * [1.0, scale, scale]  # months -> fitted scale
    p = likelihood.profile(psi_of(theta), sums)
    back = time_factors(sums.terms, arguments["time"], scale)
    offset = reml_time_offset(sums.terms, arguments["time"], scale, sums.reml)
    assert -0.5 * p.deviance + offset == pytest.approx(reference["log_likelihood"], abs=1e-8)
    beta = (p.beta + np.where(np.array(sums.terms) == "Intercept", sums.y_shift, 0.0)) * back
    assert beta == pytest.approx(reference["fixed"]["estimate"], rel=1e-9, abs=1e-12)
    se, df = fixed_effect_inference(p, sums, likelihood)
    assert se * back == pytest.approx(reference["fixed"]["std_error"], rel=1e-7)
    assert df == pytest.approx(reference["fixed"]["df"], rel=1e-4)

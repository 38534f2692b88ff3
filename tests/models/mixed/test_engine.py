"""Both engines against lme4's published results; the one choice of engine."""

from __future__ import annotations

import pytest

from models.mixed import ENGINES, check_engine, fit_growth_model
from models.mixed.fast import FAST_ENGINE
from models.mixed.reference import STATSMODELS_ENGINE
from tests.models.mixed.conftest import SLEEP, sleepstudy

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
    fit = fit_growth_model(sleepstudy(), engine=engine, **SLEEP)
    fixed = {r["term"]: r for r in fit.fixed_effects.iter_rows(named=True)}
    for term in ("Intercept", "Days"):
        estimate, se = LME4_SLEEPSTUDY[term]
        assert fixed[term]["estimate"] == pytest.approx(estimate, abs=1e-3)
        assert fixed[term]["std_error"] == pytest.approx(se, abs=1e-3)
    variance = dict(fit.variance_components.select("component", "estimate").iter_rows())
    for name in ("intercept_var", "slope_var", "residual_var"):
        assert variance[name] == pytest.approx(LME4_SLEEPSTUDY[name], rel=2e-4)
    assert -2 * fit.log_likelihood == pytest.approx(LME4_SLEEPSTUDY["reml_criterion"], abs=0.05)
    assert fit.converged and fit.n_groups == 18 and fit.n_observations == 180


@pytest.mark.parametrize(
    ("engine", "text"), [("fast", FAST_ENGINE), ("statsmodels", STATSMODELS_ENGINE)]
)
def test_fit_growth_model_records_the_engine_that_ran(engine, text):
    """The fit carries its engine's description (the manifest publishes it)."""
    fit = fit_growth_model(sleepstudy(), engine=engine, **SLEEP)
    assert fit.engine == text
    assert text.startswith("statsmodels") == (engine == "statsmodels")


def test_fit_growth_model_with_time_as_the_fixed_part_is_the_default_model():
    """``fixed=time`` is ``outcome ~ time``: the same fit, to the bit."""
    default = fit_growth_model(sleepstudy(), **SLEEP)
    explicit = fit_growth_model(sleepstudy(), fixed="Days", **SLEEP)
    assert default.fixed_effects.equals(explicit.fixed_effects)
    assert default.variance_components.equals(explicit.variance_components)


def test_check_engine_refuses_an_unknown_engine():
    check_engine("fast")
    with pytest.raises(ValueError, match="engine must be one of"):
        check_engine("lme4")
    with pytest.raises(ValueError, match="engine"):
        fit_growth_model(sleepstudy(), engine="x", **SLEEP)

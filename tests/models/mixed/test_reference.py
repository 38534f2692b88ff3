"""The statsmodels engine: time scaling is exact, the three-level model is MixedLM's."""

from __future__ import annotations

import pytest

from models.mixed.reference import fit_growth_model_statsmodels
from tests.models.mixed.conftest import SLEEP, sleepstudy


def test_fit_growth_model_statsmodels_time_scale_is_an_exact_reparametrisation():
    """Fitting Days/7 (weeks) and transforming back gives the per-day results."""
    days = fit_growth_model_statsmodels(sleepstudy(), **SLEEP)
    weeks = fit_growth_model_statsmodels(sleepstudy(), time_scale=7, **SLEEP)
    for column in ("estimate", "std_error", "t", "ci_low", "ci_high"):
        a, b = days.fixed_effects[column].to_list(), weeks.fixed_effects[column].to_list()
        assert a == pytest.approx(b, rel=1e-4), column
    # df and p: numerical derivatives at two slightly different stopping points of MixedLM
    for column in ("df", "p_value"):
        a, b = days.fixed_effects[column].to_list(), weeks.fixed_effects[column].to_list()
        assert a == pytest.approx(b, rel=5e-3), column
    assert days.variance_components["estimate"].to_list() == pytest.approx(
        weeks.variance_components["estimate"].to_list(), rel=1e-3
    )

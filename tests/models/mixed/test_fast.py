"""The fast engine's fits against statsmodels MixedLM run to its optimum (the reference)."""

from __future__ import annotations

import pandas as pd
import pytest

from models.interaction import FIXED, REDUCED, interaction_data
from models.mixed.fast import fit_growth_model_fast
from models.mixed.reference import fit_growth_model_statsmodels
from tests.models.mixed.conftest import (
    PAIN,
    SLEEP,
    assert_same_fit,
    cohort_rows,
    sleepstudy,
    statsmodels_tight,
    unbalanced_rows,
    with_covariate,
)

PAIN_KEY = PAIN | {"group": "patient_key"}


@pytest.fixture(scope="module")
def pain(study_views) -> pd.DataFrame:
    views, _ = study_views
    return interaction_data(views["analysis_patient_months"]).to_pandas()


@pytest.mark.parametrize("reml", [True, False])
def test_fit_growth_model_fast_equals_statsmodels_on_sleepstudy(reml):
    ref, _ = statsmodels_tight(sleepstudy(), reml=reml, **SLEEP)
    assert_same_fit(fit_growth_model_fast(sleepstudy(), reml=reml, **SLEEP), ref)


@pytest.mark.parametrize("reml", [True, False])
def test_fit_growth_model_fast_equals_statsmodels_on_a_simulated_cohort(reml):
    rows = cohort_rows(300, 5)
    ref, _ = statsmodels_tight(rows, reml=reml, **PAIN)
    assert_same_fit(fit_growth_model_fast(rows, reml=reml, **PAIN), ref)


def test_fit_growth_model_fast_equals_statsmodels_with_one_visit_patients():
    rows = unbalanced_rows()
    visits = rows.groupby("patient_id").size()
    assert (visits == 1).sum() >= 60
    ref, _ = statsmodels_tight(rows, **PAIN)
    assert_same_fit(fit_growth_model_fast(rows, **PAIN), ref)


@pytest.mark.parametrize(
    ("fixed", "reml"), [(FIXED, True), (FIXED, False), (REDUCED, False), (REDUCED, True)]
)
def test_fit_growth_model_fast_equals_statsmodels_on_the_interaction_models(pain, fixed, reml):
    ref, _ = statsmodels_tight(pain, fixed=fixed, reml=reml, **PAIN_KEY)
    assert_same_fit(fit_growth_model_fast(pain, fixed=fixed, reml=reml, **PAIN_KEY), ref)


@pytest.mark.parametrize("reml", [True, False])
def test_fit_growth_model_fast_equals_statsmodels_with_row_covariates(reml):
    rows = with_covariate(unbalanced_rows())
    fixed = "month * depressed + dose"
    ref, _ = statsmodels_tight(rows, fixed=fixed, reml=reml, **PAIN_KEY)
    assert_same_fit(fit_growth_model_fast(rows, fixed=fixed, reml=reml, **PAIN_KEY), ref)


def test_fit_growth_model_fast_optimum_is_at_least_statsmodels_default():
    """statsmodels' default fit (what its engine runs) is no better than the fast one,
    and agrees with it to its own optimiser's precision."""
    rows = cohort_rows(300, 5)
    default = fit_growth_model_statsmodels(rows, **PAIN)
    fast = fit_growth_model_fast(rows, **PAIN)
    assert fast.log_likelihood >= default.log_likelihood - 1e-9
    assert_same_fit(fast, default, rel=1e-3)


def test_fit_growth_model_fast_time_scale_is_an_exact_reparametrisation():
    rows = cohort_rows(200, 3)
    months = fit_growth_model_fast(rows, reml=False, **(PAIN | {"time_scale": 1}))
    years = fit_growth_model_fast(rows, reml=False, **PAIN)
    for name in ("fixed_effects", "variance_components"):
        a, b = getattr(months, name)["estimate"], getattr(years, name)["estimate"]
        assert a.to_list() == pytest.approx(b.to_list(), rel=1e-7)
    assert months.log_likelihood == pytest.approx(years.log_likelihood, rel=1e-12)


def test_fit_growth_model_fast_refuses_a_formula_without_intercept(pain):
    with pytest.raises(ValueError, match="intercept"):
        fit_growth_model_fast(pain, fixed="month - 1", **PAIN_KEY)

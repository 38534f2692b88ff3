"""Centre as a further random level: no centre effect in the simulator, one added here.
(lme4 agreement: tests/models/mixed/test_lme4_reference.py)"""

from __future__ import annotations

import polars as pl
import pytest

from models.analysis import Options
from models.centre import fit, fit_centre_model
from models.mixed.centre import FAST_CENTRE_ENGINE
from models.primary import fit_primary_model
from tests.models.conftest import months_with_centre_effect, simulated_views


def _variances(result) -> dict[str, float]:
    return dict(result.fit.variance_components.select("component", "estimate").iter_rows())


def test_fit_centre_model_finds_no_centre_variance_when_there_is_none():
    """Without a centre effect the centre variance goes to its boundary (seed 2: exactly
    0, lme4 says singular too), the fit is flagged singular and the rest is the primary
    model's: slope, and the patient covariance the primary model also estimates."""
    months = simulated_views(300, 2)[0]["analysis_patient_months"]
    result = fit_centre_model(months)
    variance = _variances(result)
    assert variance["centre_intercept_var"] < 1e-12
    assert result.fit.singular and result.fit.boundary == ("centre_intercept_var",)
    assert variance["patient_intercept_var"] > 1.0
    primary = fit_primary_model(months).fit
    for column in ("estimate", "std_error"):
        ours = result.fit.fixed_effects[column].to_list()
        assert ours == pytest.approx(primary.fixed_effects[column].to_list(), rel=1e-5)
    primary_variances = dict(
        primary.variance_components.select("component", "estimate").iter_rows()
    )
    assert variance["intercept_slope_cov"] == pytest.approx(
        primary_variances["intercept_slope_cov"], rel=1e-4
    )
    assert result.fit.log_likelihood == pytest.approx(primary.log_likelihood, abs=1e-6)
    assert (result.n_centres, result.n_patients) == (30, 300)


def test_fit_centre_model_recovers_an_added_centre_effect():
    """Centre offsets of SD 1.0 (variance 1) added to NPRS are found (30 centres: rough)."""
    result = fit_centre_model(months_with_centre_effect(1.0))
    variance = _variances(result)
    assert 0.4 < variance["centre_intercept_var"] < 2.0
    assert not result.fit.singular and not result.fit.variance_components["at_boundary"].any()


def test_fit_centre_model_has_no_statsmodels_engine():
    """statsmodels cannot nest a correlated intercept and slope in centre: said, not faked."""
    with pytest.raises(ValueError, match="statsmodels MixedLM cannot fit the centre model"):
        fit_centre_model(months_with_centre_effect(0.0), engine="statsmodels")


def test_fit_centre_model_refuses_a_patient_in_two_centres_or_an_unknown_engine():
    months = months_with_centre_effect(0.0)
    moved = months.with_columns(
        centre_id=pl.when(pl.int_range(pl.len()) == 0).then(pl.lit("C99")).otherwise("centre_id")
    )
    with pytest.raises(ValueError, match="more than one centre"):
        fit_centre_model(moved)
    with pytest.raises(ValueError, match="engine"):
        fit_centre_model(months, engine="lme4")


def test_fit_records_the_engine_and_publishes_the_centre_tables():
    views = {"analysis_patient_months": months_with_centre_effect(0.0)}
    fitted = fit(views, Options(seed=1, n_rep=1, n_starts=1))
    record = fitted.specification["lmm_centre"]
    assert record["engine"] == FAST_CENTRE_ENGINE
    assert record["log_likelihood"] == fitted.result.fit.log_likelihood
    assert record["singular"] == fitted.result.fit.singular
    assert record["at_boundary"] == list(fitted.result.fit.boundary)
    assert set(fitted.tables) == {"lmm_centre_fixed_effects", "lmm_centre_variance_components"}
    fixed = fitted.tables["lmm_centre_fixed_effects"]
    assert fixed["n_centres"].to_list() == [30, 30]
    assert fixed["singular"].to_list() == [fitted.result.fit.singular] * 2
    assert fitted.converged

"""Time x baseline-depression model: LRT by hand, the simulator's truth, the sign."""

from __future__ import annotations

import polars as pl
import pytest
import statsmodels.formula.api as smf
from scipy import stats

from models.analysis import Options
from models.interaction import TERM, fit, fit_interaction_model, interaction_data
from models.mixed.fast import FAST_ENGINE
from tests.models.conftest import simulated_views

TRUE_INTERACTION = 0.04  # simulator: no depression adds -0.04/month, so depressed = +0.04


@pytest.fixture(scope="module")
def study_fit(study_views):
    views, _ = study_views
    return fit_interaction_model(views["analysis_patient_months"])


def test_fit_interaction_model_lrt_equals_twice_the_ml_loglik_difference(study_views, study_fit):
    """It matches two ML fits done directly in statsmodels (time in years)."""
    views, _ = study_views
    data = interaction_data(views["analysis_patient_months"]).to_pandas()
    data["years"] = data["month"] / 12
    llf = {
        rhs: smf.mixedlm(f"nprs ~ {rhs}", data, groups=data["patient_key"], re_formula="~years")
        .fit(reml=False)
        .llf
        for rhs in ("years * depressed", "years + depressed")
    }
    chi2 = 2 * (llf["years * depressed"] - llf["years + depressed"])
    row = study_fit.test.row(0, named=True)
    assert row["lrt_chi2"] == pytest.approx(chi2, rel=1e-4)
    assert row["lrt_p_value"] == pytest.approx(stats.chi2.sf(chi2, 1), rel=1e-3)
    assert row["lrt_chi2"] == pytest.approx(row["t"] ** 2, rel=0.15)  # Wald ~ LRT


def test_fit_interaction_model_recovers_the_simulated_interaction(study_fit):
    """On the 329-patient simulated cohort, +0.04 (depressed = 1) lies in the 95% CI."""
    depressed, not_depressed = study_fit.test.rows(named=True)
    assert depressed["term"] == TERM and depressed["converged"]
    assert depressed["ci_low"] < TRUE_INTERACTION < depressed["ci_high"]
    assert depressed["n_patients"] == 329
    assert not_depressed["estimate"] == pytest.approx(-depressed["estimate"])
    assert not_depressed["ci_low"] == pytest.approx(-depressed["ci_high"])


def test_fit_interaction_model_sign_follows_the_depressed_coding():
    """A large simulated effect (no depression: -0.2/month) gives about +0.2 for depressed=1."""
    views, _ = simulated_views(150, 4, no_depression_extra_slope=-0.2)
    test = fit_interaction_model(views["analysis_patient_months"]).test
    row = test.filter(pl.col("term") == TERM).row(0, named=True)
    assert row["ci_low"] < 0.2 < row["ci_high"]
    assert row["ci_low"] > 0 and row["lrt_p_value"] < 1e-6


def test_fit_interaction_model_engines_agree_and_default_is_fast(study_views):
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


def test_fit_records_the_engine_and_publishes_the_interaction_tables(study_views, study_fit):
    views, _ = study_views
    fitted = fit(views, Options(seed=1, n_rep=1, n_starts=1))
    record = {"engine": FAST_ENGINE, "singular": False, "at_boundary": []}
    assert fitted.specification == {"lmm_interaction": record}
    assert fitted.tables["lmm_interaction_test"].equals(study_fit.test)
    assert fitted.converged

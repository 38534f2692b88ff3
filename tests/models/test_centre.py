"""Centre as a further random level: no centre effect in the simulator, one added here."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from models.analysis import Options
from models.centre import fit, fit_centre_model
from models.mixed.centre import FAST_CENTRE_ENGINE
from models.primary import fit_primary_model
from tests.models.conftest import months_with_centre_effect


def test_fit_centre_model_finds_no_centre_variance_when_there_is_none():
    months = months_with_centre_effect(0.0)
    result = fit_centre_model(months)
    variance = dict(result.fit.variance_components.iter_rows())
    assert variance["centre_intercept_var"] < 0.1
    assert variance["patient_intercept_var"] > 1.0
    slope = result.fit.fixed_effects.filter(term="month")["estimate"].item()
    primary = fit_primary_model(months).fit.fixed_effects.filter(term="month")
    assert slope == pytest.approx(primary["estimate"].item(), abs=0.01)
    assert (result.n_centres, result.n_patients) == (30, 300)


def test_fit_centre_model_recovers_an_added_centre_effect():
    """Centre offsets of SD 1.0 (variance 1) added to NPRS are found (30 centres: rough)."""
    result = fit_centre_model(months_with_centre_effect(1.0))
    variance = dict(result.fit.variance_components.iter_rows())
    assert 0.4 < variance["centre_intercept_var"] < 2.0


@pytest.mark.parametrize("centre_sd", [0.0, 1.0])
def test_fit_centre_model_engines_agree(centre_sd):
    months = months_with_centre_effect(centre_sd)
    fast = fit_centre_model(months)
    reference = fit_centre_model(months, engine="statsmodels")
    assert fast.fit.converged and reference.fit.converged
    for column in ("estimate", "std_error"):
        np.testing.assert_allclose(
            fast.fit.fixed_effects[column], reference.fit.fixed_effects[column], rtol=5e-3
        )
    assert (fast.n_centres, fast.n_patients) == (reference.n_centres, reference.n_patients)
    assert fast.fit.n_observations == reference.fit.n_observations


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
    assert fitted.specification == {"lmm_centre": {"engine": FAST_CENTRE_ENGINE}}
    assert set(fitted.tables) == {"lmm_centre_fixed_effects", "lmm_centre_variance_components"}
    assert fitted.tables["lmm_centre_fixed_effects"]["n_centres"].to_list() == [30, 30]
    assert fitted.converged

"""Centre as a further random level: no centre effect in the simulator, one added here."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from models.centre import fit_centre_model
from models.lmm import fit_primary_model
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

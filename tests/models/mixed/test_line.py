"""The line likelihood (X = Z, the primary model) is statsmodels' own."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.regression.mixed_linear_model import MixedLMParams

from models.mixed import line
from models.mixed.optimise import optimise
from models.mixed.sums import line_sums
from tests.models.mixed.conftest import statsmodels_tight, unbalanced_rows


@pytest.mark.parametrize("reml", [True, False])
def test_line_likelihood_and_hessian_are_statsmodels_own(reml):
    """At the fast optimum and away from it, the closed forms equal MixedLM.loglike and
    MixedLM.hessian (whose inverse gives bse_fe) on unbalanced data."""
    rows = unbalanced_rows().assign(month=lambda d: d["month"] / 12)
    kw = {"outcome": "nprs", "time": "month", "group": "patient_id"}
    _, model = statsmodels_tight(rows, reml=reml, **kw)
    sums = line_sums(rows, reml=reml, time_scale=1.0, **kw)
    best, _ = optimise(sums, line.LINE)
    for psi in (best.psi, best.psi * 1.3 + np.diag([0.1, 0.01])):
        p = line.profile(psi, sums)
        params = MixedLMParams.from_components(p.beta + [sums.y_shift, 0], cov_re=psi)
        assert -0.5 * p.deviance == pytest.approx(model.loglike(params), rel=1e-12)
        hessian, _ = model.hessian(params)
        np.testing.assert_allclose(line.loglike_hessian(p, sums), hessian, rtol=1e-9)

"""Sensitivity analysis: the primary model with centre as a further random level.

Model: ``nprs ~ month``, random intercept per centre, and per patient within centre a
random intercept and a random slope of month (statsmodels MixedLM: ``groups=centre``,
patients as variance components). MixedLM's variance components are independent, so this
model has no patient intercept-slope covariance (the primary model has one). Fitted by
REML with time in years, then scaled back to months. A centre variance near 0 (on the
boundary: statsmodels warns and we report it) means centres add nothing beyond patients.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import statsmodels.formula.api as smf

from models import fast_centre
from models.fast_lmm import tidy_fixed
from models.lmm import ENGINES, ONE_YEAR, fit_quietly, tidy_fixed_effects

# Powell then L-BFGS: statsmodels' default (BFGS) often fails with the centre variance on
# its boundary (no centre effect) and retries for ~10 s; this order converges in ~1-2 s.
OPTIMISERS = ["powell", "lbfgs"]
VC_FORMULA = {"patient": "0 + C(patient_key)", "patient_slope": "0 + C(patient_key):month"}


@dataclass
class CentreModelResult:
    fixed_effects: pl.DataFrame
    variance_components: pl.DataFrame  # component, estimate (month units)
    n_observations: int
    n_patients: int
    n_centres: int
    converged: bool


def fit_centre_model(analysis: pl.DataFrame, *, engine: str = "fast") -> CentreModelResult:
    """Fit the three-level model (centre / patient / month) on observed patient-months.

    ``engine="fast"`` (default) fits from per-patient sums (models.fast_centre:
    statsmodels' likelihood; 19,000 patients: 2 min -> under a second); ``"statsmodels"``
    runs MixedLM with patients as variance components, the reference.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, not {engine!r}")
    frame = analysis.select("centre_id", "patient_key", "month", "nprs").drop_nulls()
    data = frame.with_columns(pl.col("month") / ONE_YEAR).to_pandas()
    if engine == "fast":
        return _fit_fast(data, frame)
    model = smf.mixedlm(
        "nprs ~ month", data, groups="centre_id", re_formula="1", vc_formula=VC_FORMULA
    )
    result, converged = fit_quietly(model, reml=True, method=OPTIMISERS)
    names = list(result.model.exog_vc.names)
    vcomp = dict(zip(names, result.vcomp, strict=True))
    variance = pl.DataFrame(
        {
            "component": ["centre_intercept_var", "patient_intercept_var", "slope_var"]
            + ["residual_var"],
            "estimate": [
                float(result.cov_re.iloc[0, 0]),
                vcomp["patient"],
                vcomp["patient_slope"] / ONE_YEAR**2,
                float(result.scale),
            ],
        }
    )
    return CentreModelResult(
        fixed_effects=tidy_fixed_effects(result, time="month", time_scale=ONE_YEAR),
        variance_components=variance,
        n_observations=int(result.nobs),
        n_patients=frame["patient_key"].n_unique(),
        n_centres=frame["centre_id"].n_unique(),
        converged=converged,
    )


def _fit_fast(data, frame: pl.DataFrame) -> CentreModelResult:
    sums = fast_centre.centre_sums(data, "nprs", "month", reml=True)
    variances, best, converged = fast_centre.fit(sums)
    se = fast_centre.fixed_effect_se(best.beta, variances, sums)
    back = np.array([1.0, 1.0 / ONE_YEAR])
    beta = (best.beta + [sums.patients.y_shift, 0.0]) * back
    sigma2 = best.q / sums.patients.df
    t, psi_a, psi_b = variances * sigma2
    return CentreModelResult(
        fixed_effects=tidy_fixed(["Intercept", "month"], beta, se * back),
        variance_components=pl.DataFrame(
            {
                "component": ["centre_intercept_var", "patient_intercept_var", "slope_var"]
                + ["residual_var"],
                "estimate": [t, psi_a, psi_b / ONE_YEAR**2, sigma2],
            }
        ),
        n_observations=sums.patients.n_observations,
        n_patients=frame["patient_key"].n_unique(),
        n_centres=frame["centre_id"].n_unique(),
        converged=converged,
    )

"""A fitted mixed model in tidy tables: one Wald table, one variance-components table.

Every engine (the fast fits and statsmodels, the reference) hands its estimates to these
functions, so the published columns and their arithmetic are the same whichever ran.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy import stats

from models.mixed.inference import at_boundary, cholesky_factor

GROWTH_COMPONENTS = ("intercept_var", "slope_var", "intercept_slope_cov", "residual_var")
CENTRE_COMPONENTS = (
    "centre_intercept_var",
    "patient_intercept_var",
    "slope_var",
    "intercept_slope_cov",
    "residual_var",
)


@dataclass
class GrowthModelFit:
    """A fitted random intercept and slope model (with a centre level or not), tidy."""

    fixed_effects: pl.DataFrame  # term, estimate, std_error, df, t, p_value, ci_low, ci_high
    variance_components: pl.DataFrame  # component, estimate (time in the caller's units)
    n_observations: int
    n_groups: int  # patients
    log_likelihood: float  # in the caller's time units (REML depends on them), see fits
    converged: bool
    engine: str  # what fitted it, as the manifest records it
    singular: bool = False  # a variance on its boundary (lme4's isSingular)
    boundary: tuple[str, ...] = ()  # the components on it


def wald_table(terms: list[str], estimate, std_error, df=None) -> pl.DataFrame:
    """Fixed effects with t = estimate / SE, two-sided p and 95% CI from the t
    distribution with ``df`` degrees of freedom (Satterthwaite; None: normal, df = inf)."""
    estimate, std_error = np.asarray(estimate), np.asarray(std_error)
    df = np.full(estimate.shape, np.inf) if df is None else np.asarray(df, dtype=float)
    t = estimate / std_error
    quantile = stats.t.ppf(0.975, df)
    return pl.DataFrame(
        {
            "term": terms,
            "estimate": estimate,
            "std_error": std_error,
            "df": df,
            "t": t,
            "p_value": 2 * stats.t.sf(np.abs(t), df),
            "ci_low": estimate - quantile * std_error,
            "ci_high": estimate + quantile * std_error,
        }
    )


def reml_time_offset(terms: list[str], time: str, time_scale: float, reml: bool) -> float:
    """What takes a REML log-likelihood fitted with time / time_scale to time units.

    REML's log|X'V^-1 X| changes by 2 log|D| when X's time columns are divided (D the
    diagonal of ``time_factors``): log-likelihood in time units = fitted + log|D|, e.g.
    - log 12 for ``nprs ~ month`` fitted in years. ML does not depend on the scale."""
    return float(np.log(time_factors(terms, time, time_scale)).sum()) if reml else 0.0


def time_factors(terms: list[str], time: str, time_scale: float) -> np.ndarray:
    """Per term, what takes a coefficient fitted with time / time_scale back to time units:
    1 / time_scale for each time factor of the term (``month:depressed`` has one)."""
    return np.array([time_scale ** -str(term).split(":").count(time) for term in terms])


def variance_table(components: dict[str, float], boundary=()) -> pl.DataFrame:
    """component, estimate, at_boundary: one row per variance or covariance, in order."""
    return pl.DataFrame(
        {
            "component": list(components),
            "estimate": list(components.values()),
            "at_boundary": [name in boundary for name in components],
        }
    )


def growth_variances(g: np.ndarray, sigma2: float, time_scale: float, boundary=()) -> pl.DataFrame:
    """Random intercept and slope (co)variances ``g`` (fitted with time / time_scale) in
    time units, and the residual variance; ``boundary`` names those on their boundary."""
    values = [g[0, 0], g[1, 1] / time_scale**2, g[0, 1] / time_scale, sigma2]
    return variance_table(dict(zip(GROWTH_COMPONENTS, values, strict=True)), boundary)


def growth_boundary(psi: np.ndarray, time_scale: float) -> tuple[str, ...]:
    """lme4's isSingular on the intercept and slope: theta = the Cholesky factor of
    ``psi`` (= G / sigma^2, fitted with time / time_scale) taken to time units."""
    chol = cholesky_factor(psi)
    return tuple(at_boundary({"intercept_var": chol[0, 0], "slope_var": chol[1, 1] / time_scale}))

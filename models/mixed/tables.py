"""A fitted mixed model in tidy tables: one Wald table, one variance-components table.

Every engine (the fast fits and statsmodels, the reference) hands its estimates to these
functions, so the published columns and their arithmetic are the same whichever ran.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy import stats

GROWTH_COMPONENTS = ("intercept_var", "slope_var", "intercept_slope_cov", "residual_var")
CENTRE_COMPONENTS = ("centre_intercept_var", "patient_intercept_var", "slope_var", "residual_var")


@dataclass
class GrowthModelFit:
    """A fitted random intercept and slope model (with a centre level or not), tidy."""

    fixed_effects: pl.DataFrame  # term, estimate, std_error, z, p_value, ci_low, ci_high
    variance_components: pl.DataFrame  # component, estimate (time in the caller's units)
    n_observations: int
    n_groups: int  # patients
    log_likelihood: float
    converged: bool
    engine: str  # what fitted it, as the manifest records it


def wald_table(terms: list[str], estimate, std_error) -> pl.DataFrame:
    """Fixed effects with Wald z, two-sided normal p and 95% CI."""
    z = stats.norm.ppf(0.975)
    estimate, std_error = np.asarray(estimate), np.asarray(std_error)
    return pl.DataFrame(
        {
            "term": terms,
            "estimate": estimate,
            "std_error": std_error,
            "z": estimate / std_error,
            "p_value": 2 * stats.norm.sf(np.abs(estimate / std_error)),
            "ci_low": estimate - z * std_error,
            "ci_high": estimate + z * std_error,
        }
    )


def time_factors(terms: list[str], time: str, time_scale: float) -> np.ndarray:
    """Per term, what takes a coefficient fitted with time / time_scale back to time units:
    1 / time_scale for each time factor of the term (``month:depressed`` has one)."""
    return np.array([time_scale ** -str(term).split(":").count(time) for term in terms])


def variance_table(components: dict[str, float]) -> pl.DataFrame:
    """component, estimate: one row per variance or covariance, in the order given."""
    return pl.DataFrame({"component": list(components), "estimate": list(components.values())})


def growth_variances(g: np.ndarray, sigma2: float, time_scale: float) -> pl.DataFrame:
    """Random intercept and slope (co)variances ``g`` (fitted with time / time_scale) in
    time units, and the residual variance."""
    values = [g[0, 0], g[1, 1] / time_scale**2, g[0, 1] / time_scale, sigma2]
    return variance_table(dict(zip(GROWTH_COMPONENTS, values, strict=True)))

"""Primary analysis: linear mixed model of pain (NPRS) over the year.

Model: ``nprs ~ month`` with a random intercept and a random slope of month per patient,
fitted by REML (by default from per-patient sums, models.fast_lmm; statsmodels MixedLM,
the reference, with ``engine="statsmodels"``). Every patient contributes the months they
answered, so the fit is valid when missingness depends on observed pain (MAR).

Standardised effect size of the one-year change (our definition; the paper does not
state its own): ``ES = 12 * beta_month / SD(NPRS at month 0)``, the model's mean change
over twelve months in units of the observed baseline standard deviation. Its 95% CI is
the Wald CI of ``beta_month`` scaled the same way (the baseline SD taken as known).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import polars as pl
import statsmodels.formula.api as smf
from scipy import stats

FORMULA = "nprs ~ month"
RE_FORMULA = "~month"
ONE_YEAR = 12


@dataclass
class GrowthModelFit:
    """A fitted random intercept and slope model, in tidy tables."""

    fixed_effects: pl.DataFrame  # term, estimate, std_error, z, p_value, ci_low, ci_high
    variance_components: pl.DataFrame  # component, estimate
    n_observations: int
    n_groups: int
    log_likelihood: float
    converged: bool


def fit_growth_model(
    data: pd.DataFrame,
    *,
    outcome: str,
    time: str,
    group: str,
    reml: bool = True,
    time_scale: float = 1.0,
    fixed: str | None = None,
) -> GrowthModelFit:
    """Fit ``outcome ~ fixed`` with random intercept and slope of ``time`` per ``group``.

    ``fixed`` is the right-hand side of the fixed part (default: ``time``; e.g.
    ``"month * depressed"``). ``time_scale`` divides time before fitting and the results
    are transformed back exactly (every term containing time, its SE x 1/scale per time
    factor; slope variance x 1/scale^2). MixedLM's optimiser often fails on monthly
    slopes, whose variance is ~1000x smaller than the intercept's; in years (scale 12) it
    converges.
    """
    data = data.assign(**{time: data[time] / time_scale})
    model = smf.mixedlm(
        f"{outcome} ~ {fixed or time}", data, groups=data[group], re_formula=f"~{time}"
    )
    result, converged = fit_quietly(model, reml=reml)
    return GrowthModelFit(
        fixed_effects=tidy_fixed_effects(result, time=time, time_scale=time_scale),
        variance_components=variance_components(result, time_scale),
        n_observations=int(result.nobs),
        n_groups=len(result.random_effects),
        log_likelihood=float(result.llf),
        converged=converged,
    )


def variance_components(result, time_scale: float = 1.0) -> pl.DataFrame:
    """Random intercept and slope (co)variances, in the original time units, and residual."""
    cov = result.cov_re
    return pl.DataFrame(
        {
            "component": ["intercept_var", "slope_var", "intercept_slope_cov", "residual_var"],
            "estimate": [
                cov.iloc[0, 0],
                cov.iloc[1, 1] / time_scale**2,
                cov.iloc[0, 1] / time_scale,
                result.scale,
            ],
        }
    )


def fit_quietly(model, **fit_kwargs):
    """Fit a MixedLM; converged only if statsmodels says so and warned of no failure."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = model.fit(**fit_kwargs)
    converged = bool(result.converged) and not any(
        "converge" in str(w.message).lower() for w in caught
    )
    return result, converged


def tidy_fixed_effects(result, *, time: str = "", time_scale: float = 1.0) -> pl.DataFrame:
    """Fixed effects with Wald z, p and 95% CI, time terms scaled back to ``time`` units."""
    z = stats.norm.ppf(0.975)
    factors = [str(term).split(":") for term in result.fe_params.index]
    back = np.array([time_scale ** -sum(f == time for f in parts) for parts in factors])
    fe = result.fe_params.to_numpy() * back
    se = result.bse_fe.to_numpy() * back
    return pl.DataFrame(
        {
            "term": [str(t) for t in result.fe_params.index],
            "estimate": fe,
            "std_error": se,
            "z": fe / se,
            "p_value": 2 * stats.norm.sf(np.abs(fe / se)),
            "ci_low": fe - z * se,
            "ci_high": fe + z * se,
        }
    )


@dataclass
class PrimaryResult:
    fit: GrowthModelFit
    effect_size: pl.DataFrame  # one row: estimate, ci_low, ci_high, baseline_sd, n


ENGINES = ("fast", "statsmodels")


def growth_model_engine(engine: str):
    """The function fitting ``outcome ~ time`` for ``engine`` (same signature and result)."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, not {engine!r}")
    if engine == "statsmodels":
        return fit_growth_model
    from models.fast_lmm import fit_growth_model_fast  # imported here: it imports this module

    return fit_growth_model_fast


def fit_primary_model(analysis: pl.DataFrame, *, engine: str = "fast") -> PrimaryResult:
    """Fit the primary model on patient-months (patient_key, month, nprs).

    ``engine="fast"`` (default) fits the same REML model from per-patient sums
    (models.fast_lmm: same estimates, SEs and log-likelihood as statsmodels, in
    milliseconds instead of minutes at 20,000 patients); ``"statsmodels"`` runs MixedLM,
    the reference the fast engine is tested against.
    """
    fit_model = growth_model_engine(engine)
    data = analysis.select("patient_key", "month", "nprs").drop_nulls().to_pandas()
    fit = fit_model(data, outcome="nprs", time="month", group="patient_key", time_scale=ONE_YEAR)
    slope = fit.fixed_effects.filter(pl.col("term") == "month").row(0, named=True)
    baseline_sd = float(data.loc[data["month"] == 0, "nprs"].std(ddof=1))
    scale = ONE_YEAR / baseline_sd
    effect = pl.DataFrame(
        {
            "quantity": ["standardised_one_year_change"],
            "estimate": [slope["estimate"] * scale],
            "ci_low": [slope["ci_low"] * scale],
            "ci_high": [slope["ci_high"] * scale],
            "p_value": [slope["p_value"]],
            "baseline_sd": [baseline_sd],
            "one_year_change": [slope["estimate"] * ONE_YEAR],
            "n_patients": [fit.n_groups],
            "n_observations": [fit.n_observations],
            "definition": [f"{ONE_YEAR} * beta_month / SD(NPRS at month 0)"],
        }
    )
    return PrimaryResult(fit=fit, effect_size=effect)

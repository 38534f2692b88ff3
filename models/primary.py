"""Primary analysis: linear mixed model of pain (NPRS) over the year.

Model: ``nprs ~ month`` with a random intercept and a random slope of month per patient,
fitted by REML (by default from per-patient sums, models.mixed; statsmodels MixedLM, the
reference, with ``engine="statsmodels"``). Every patient contributes the months they
answered, so the fit is valid when missingness depends on observed pain (MAR).

Standardised effect size of the one-year change (our definition; the paper does not
state its own): ``ES = 12 * beta_month / SD(NPRS at month 0)``, the model's mean change
over twelve months in units of the observed baseline standard deviation. Its 95% CI is
the Wald CI of ``beta_month`` scaled the same way (the baseline SD taken as known).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import polars as pl

from models.analysis import Fitted, Options, Specification, Views
from models.mixed import SE_CONVENTION, GrowthModelFit, fit_growth_model
from schemas.forms import ONE_YEAR

NAME = "primary"
FORMULA = "nprs ~ month"
RE_FORMULA = "~month"
SPECIFICATION = {
    "model": "linear mixed model, REML",
    "formula": FORMULA,
    "random_effects": f"{RE_FORMULA} | patient_key (random intercept and slope, unstructured)",
    "time": "month since inclusion, 0-12",
    "effect_size": "12 * beta_month / SD(NPRS at month 0); CI = Wald CI of beta_month scaled",
    "data": "follow_ups: every observed patient-month (missing visits omitted, MAR)",
    "inference": SE_CONVENTION,
    "log_likelihood": "REML, time in months (as lme4 on the same data)",
}


@dataclass
class PrimaryResult:
    fit: GrowthModelFit
    effect_size: pl.DataFrame  # one row: estimate, ci_low, ci_high, baseline_sd, n


def fit_primary_model(analysis: pl.DataFrame, *, engine: str = "fast") -> PrimaryResult:
    """Fit the primary model on patient-months (patient_key, month, nprs).

    ``engine="fast"`` (default) fits the REML model from per-patient sums (the same
    estimates, SEs and log-likelihood as statsmodels, in milliseconds instead of minutes
    at 20,000 patients); ``"statsmodels"`` runs MixedLM, the reference.
    """
    data = analysis.select("patient_key", "month", "nprs").drop_nulls().to_pandas()
    fit = fit_growth_model(
        data,
        outcome="nprs",
        time="month",
        group="patient_key",
        time_scale=ONE_YEAR,
        engine=engine,
    )
    return PrimaryResult(fit=fit, effect_size=effect_size(fit, data))


def effect_size(fit: GrowthModelFit, data: pd.DataFrame) -> pl.DataFrame:
    """One row: the standardised one-year change with its CI (see the module docstring)."""
    slope = fit.fixed_effects.filter(pl.col("term") == "month").row(0, named=True)
    baseline_sd = float(data.loc[data["month"] == 0, "nprs"].std(ddof=1))
    scale = ONE_YEAR / baseline_sd
    return pl.DataFrame(
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


def specification(options: Options) -> Specification:
    return {"lmm_primary": dict(SPECIFICATION)}


def fit(views: Views, options: Options) -> Fitted:
    """The primary model on ``analysis_patient_months``: lmm_primary_* tables."""
    result = fit_primary_model(views["analysis_patient_months"], engine=options.engine)
    model = result.fit
    n = {"n_patients": model.n_groups, "n_observations": model.n_observations}
    fixed = model.fixed_effects.with_columns(
        model=pl.lit("lmm_primary"), **{k: pl.lit(v) for k, v in n.items()}
    )
    tables = {
        "lmm_primary_fixed_effects": fixed,
        "lmm_primary_variance_components": model.variance_components,
        "lmm_primary_effect_size": result.effect_size,
    }
    record = {"engine": model.engine, **n, "log_likelihood": model.log_likelihood}
    record |= {"singular": model.singular, "at_boundary": list(model.boundary)}
    return Fitted(result, tables, {"lmm_primary": record}, converged=model.converged)

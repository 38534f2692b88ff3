"""Sensitivity analysis: the primary model with centre as a further random level.

Model (lme4: ``nprs ~ month + (1 | centre_id) + (month | centre_id:patient_key)``): a
random intercept per centre and, per patient within centre, a random intercept and slope
of month with their covariance (unstructured, exactly the primary model's), fitted by
REML with time in years and scaled back to months (``models.mixed.centre``; statsmodels
cannot nest correlated effects, so lme4 is the reference, tests/data). A centre variance
at 0 (its relative SD below lme4's 1e-4) makes the fit singular: flagged in the tables
(``singular``, ``at_boundary``) and the manifest; it then means that centres add nothing
beyond patients, and the SEs, held at the variance estimates, are those of the model
without the centre level.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

from models.analysis import Fitted, Options, Specification, Views
from models.mixed import GrowthModelFit, fit_three_level_model
from schemas.forms import ONE_YEAR

NAME = "centre"
SPECIFICATION = {
    "formula": "nprs ~ month",
    "random_effects": "(1 | centre_id) + (month | centre_id:patient_key): centre "
    "intercept; patient intercept and month slope within centre, unstructured",
    "estimation": "REML; SEs and Satterthwaite df as lme4 and lmerTest",
    "singular": "lme4's isSingular: a relative SD (theta's diagonal, month units) < 1e-4",
}


@dataclass
class CentreModelResult:
    fit: GrowthModelFit  # variance components: centre_intercept_var, ... (month units)
    n_patients: int
    n_centres: int


def fit_centre_model(analysis: pl.DataFrame, *, engine: str = "fast") -> CentreModelResult:
    """Fit the three-level model (centre / patient / month) on observed patient-months.

    Only ``engine="fast"`` fits it (per-patient sums; lme4 is its reference); the
    statsmodels engine raises a ValueError saying why.
    """
    frame = analysis.select("centre_id", "patient_key", "month", "nprs").drop_nulls()
    fit = fit_three_level_model(
        frame.with_columns(pl.col("month") / ONE_YEAR).to_pandas(),  # see the engine
        outcome="nprs",
        time="month",
        group="patient_key",
        cluster="centre_id",
        time_scale=ONE_YEAR,
        engine=engine,
    )
    return CentreModelResult(
        fit=fit,
        n_patients=frame["patient_key"].n_unique(),
        n_centres=frame["centre_id"].n_unique(),
    )


def specification(options: Options) -> Specification:
    return {"lmm_centre": dict(SPECIFICATION)}


def fit(views: Views, options: Options) -> Fitted:
    """The centre model on ``analysis_patient_months``: lmm_centre_* tables."""
    result = fit_centre_model(views["analysis_patient_months"], engine=options.engine)
    model = result.fit
    fixed = model.fixed_effects.with_columns(
        n_patients=pl.lit(result.n_patients),
        n_centres=pl.lit(result.n_centres),
        n_observations=pl.lit(model.n_observations),
        singular=pl.lit(model.singular),
    )
    tables = {
        "lmm_centre_fixed_effects": fixed,
        "lmm_centre_variance_components": model.variance_components,
    }
    record: dict[str, Any] = {
        "engine": model.engine,
        "singular": model.singular,
        "at_boundary": list(model.boundary),
        "log_likelihood": model.log_likelihood,
    }
    return Fitted(result, tables, {"lmm_centre": record}, converged=result.fit.converged)

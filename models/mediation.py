"""Mediation: cumulative ketamine dose -> baseline depression (HADS-D) -> pain change.

Patient-level OLS models (statsmodels ``Mediation``, bootstrap):

* mediator: ``hads_d_baseline ~ dose + age + sex``
* outcome: ``nprs_change ~ dose + hads_d_baseline + age + sex``

``dose`` is the first year's cumulative dose (``total_dose_mg``) in units of 100 mg, so the
exposure contrast 0 vs 1 that ``Mediation`` evaluates is +100 mg (about one session of
1.5 mg/kg at 70 kg). Patients missing the outcome (no month-12 NPRS) or a covariate are
excluded. Caveats: baseline HADS-D precedes the dose, so "mediation" follows the paper's
design rather than a causal order; statsmodels resamples the two models' rows
independently in each bootstrap replicate; the proportion mediated is unstable when the
total effect is near zero.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import polars as pl
import statsmodels.api as sm
import statsmodels.formula.api as smf
from scipy import stats
from statsmodels.stats.mediation import Mediation
from statsmodels.tools.sm_exceptions import SingularMatrixWarning

DOSE_UNIT_MG = 100.0
MEDIATOR_FORMULA = "hads_d_baseline ~ dose + age + sex"
OUTCOME_FORMULA = "nprs_change ~ dose + hads_d_baseline + age + sex"
COLUMNS = ("patient_key", "nprs_change", "total_dose_mg", "hads_d_baseline", "age", "sex")
EFFECT_NAMES = {
    "ACME (average)": "indirect_acme",
    "ADE (average)": "direct_ade",
    "Total effect": "total",
    "Prop. mediated (average)": "proportion_mediated",
    "ACME (control)": "indirect_acme_control",
    "ACME (treated)": "indirect_acme_treated",
    "ADE (control)": "direct_ade_control",
    "ADE (treated)": "direct_ade_treated",
    "Prop. mediated (control)": "proportion_mediated_control",
    "Prop. mediated (treated)": "proportion_mediated_treated",
}


@dataclass
class MediationResult:
    effects: pl.DataFrame  # one row per effect: estimate, ci_low, ci_high, p_value, n
    paths: pl.DataFrame  # both OLS models: one row per term
    n_patients: int
    n_excluded: int


def mediation_data(patients: pl.DataFrame) -> pl.DataFrame:
    """Complete cases, dose in 100 mg units."""
    return (
        patients.select(COLUMNS)
        .drop_nulls()
        .with_columns(dose=pl.col("total_dose_mg") / DOSE_UNIT_MG)
    )


def fit_mediation(patients: pl.DataFrame, *, seed: int, n_rep: int = 1000) -> MediationResult:
    """Bootstrap mediation analysis (seeded: the same seed gives the same CIs)."""
    data = mediation_data(patients)
    frame = data.to_pandas()
    outcome = smf.ols(OUTCOME_FORMULA, frame)
    mediator = smf.ols(MEDIATOR_FORMULA, frame)
    summary = bootstrap_effects(outcome, mediator, seed=seed, n_rep=n_rep)
    effects = pl.DataFrame(
        {
            "effect": list(EFFECT_NAMES.values()),
            "estimate": summary["Estimate"].to_numpy(),
            "ci_low": summary["Lower CI bound"].to_numpy(),
            "ci_high": summary["Upper CI bound"].to_numpy(),
            "p_value": summary["P-value"].to_numpy(),
            "n": data.height,
            "exposure_contrast": f"+{DOSE_UNIT_MG:g} mg cumulative dose (0 vs 1 unit)",
            # bootstrap model fits (2 per replicate) on a rank-deficient resample
            "rank_deficient_fits": summary.attrs.get("rank_deficient_fits", 0),
        }
    )
    paths = pl.concat([ols_table(outcome.fit(), "outcome"), ols_table(mediator.fit(), "mediator")])
    return MediationResult(effects, paths, data.height, patients.height - data.height)


def bootstrap_effects(outcome, mediator, *, seed: int, n_rep: int):
    """statsmodels Mediation on the models' design matrices; its summary, by effect.

    Built from arrays rather than formulas: with a formula, Mediation rebuilds the design
    through patsy four times per replicate (~50 ms); with arrays it sets the exposure and
    mediator columns in place, the same computation for these interaction-free models.
    """
    for model in (outcome, mediator):
        if np.linalg.matrix_rank(model.exog) < model.exog.shape[1]:
            raise ValueError(
                f"the design of {model.formula} is rank-deficient on the "
                f"{model.exog.shape[0]} complete cases (e.g. one sex only): not estimable"
            )
    plain = [sm.OLS(m.endog, m.exog) for m in (outcome, mediator)]
    exposure = tuple(m.exog_names.index("dose") for m in (outcome, mediator))
    position = outcome.exog_names.index("hads_d_baseline")
    with warnings.catch_warnings(record=True) as caught:
        # a resample of a small cohort may lack a covariate level; say how often, once
        warnings.simplefilter("always", SingularMatrixWarning)
        fitted = Mediation(*plain, exposure, position).fit(
            method="bootstrap", n_rep=n_rep, rng=seed
        )
    singular = sum(issubclass(w.category, SingularMatrixWarning) for w in caught)
    for w in caught:  # anything else is shown as usual
        if not issubclass(w.category, SingularMatrixWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    summary = fitted.summary().loc[list(EFFECT_NAMES)]
    summary.attrs["rank_deficient_fits"] = singular
    return summary


def ols_table(result, model: str) -> pl.DataFrame:
    """Tidy OLS coefficients with t-based 95% CIs."""
    ci = result.conf_int()
    return pl.DataFrame(
        {
            "model": model,
            "formula": OUTCOME_FORMULA if model == "outcome" else MEDIATOR_FORMULA,
            "term": [str(t) for t in result.params.index],
            "estimate": result.params.to_numpy(),
            "std_error": result.bse.to_numpy(),
            "ci_low": ci[0].to_numpy(),
            "ci_high": ci[1].to_numpy(),
            "p_value": result.pvalues.to_numpy(),
            "n": int(result.nobs),
        }
    )


def correlation(patients: pl.DataFrame, x: str, y: str) -> tuple[float, float, int]:
    """Pearson r, its p-value and n on complete pairs (the paper reports these)."""
    pair = patients.select(x, y).drop_nulls()
    r, p = stats.pearsonr(pair[x].to_numpy(), pair[y].to_numpy())
    return float(r), float(p), pair.height

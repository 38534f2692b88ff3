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
from scipy import linalg, stats
from statsmodels.stats.mediation import MediationResults
from statsmodels.tools.rng_qrng import check_random_state
from statsmodels.tools.sm_exceptions import SingularMatrixWarning

from models.analysis import Fitted, Options, Specification, Views

NAME = "mediation"
DOSE_UNIT_MG = 100.0
MEDIATOR_FORMULA = "hads_d_baseline ~ dose + age + sex"
OUTCOME_FORMULA = "nprs_change ~ dose + hads_d_baseline + age + sex"
SPECIFICATION = {
    "mediator_model": f"OLS {MEDIATOR_FORMULA}",
    "outcome_model": f"OLS {OUTCOME_FORMULA}",
    "exposure": f"total_dose_mg / {DOSE_UNIT_MG:g} (contrast 0 vs 1 = +{DOSE_UNIT_MG:g} mg)",
    "missing": "complete cases (the outcome needs the month-12 NPRS)",
}
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
    """statsmodels' Mediation bootstrap on the models' design matrices; its summary, by
    effect.

    The replicates are those of ``Mediation(...).fit(method="bootstrap", rng=seed)``:
    the same draws in the same order (resampled rows of each model, refitted by OLS, then
    potential mediators drawn for exposure 0 and 1), so the same numbers (tests compare).
    Mediation keeps every patient's effect in every replicate, four (patients x
    replicates) arrays: 22.8 GB at a million patients. Its summary only uses each
    replicate's average, so this keeps the averages and hands them to statsmodels'
    own ``MediationResults``.
    """
    for model in (outcome, mediator):
        if np.linalg.matrix_rank(model.exog) < model.exog.shape[1]:
            raise ValueError(
                f"the design of {model.formula} is rank-deficient on the "
                f"{model.exog.shape[0]} complete cases (e.g. one sex only): not estimable"
            )
    with warnings.catch_warnings(record=True) as caught:
        # a resample of a small cohort may lack a covariate level; say how often, once
        warnings.simplefilter("always", SingularMatrixWarning)
        indirect, direct = _replicate_averages(outcome, mediator, seed, n_rep)
    singular = sum(issubclass(w.category, SingularMatrixWarning) for w in caught)
    for w in caught:  # anything else is shown as usual
        if not issubclass(w.category, SingularMatrixWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    fitted = MediationResults([e[None, :] for e in indirect], [e[None, :] for e in direct])
    summary = fitted.summary().loc[list(EFFECT_NAMES)]
    summary.attrs["rank_deficient_fits"] = singular
    return summary


def _replicate_averages(outcome, mediator, seed: int, n_rep: int) -> tuple[list, list]:
    """Per replicate, the average indirect and direct effects for control and treated:
    ``Mediation.fit``'s loop, its random draws in its order, without per-patient arrays.

    Both models are linear without interaction, so the averages Mediation computes over
    patients reduce to coefficients and means: with potential mediators
    ``M_l = X_l a + sqrt(s) z_l`` (exposure set to l), the indirect effect is
    ``b * mean(M_1 - M_0) = b * (a_dose + sqrt(s) (mean z_1 - mean z_0))`` at either
    exposure, and the direct effect is the outcome model's dose coefficient. The draws
    are still made, so that the next replicate resamples the same rows as Mediation.
    """
    rng = check_random_state(seed)
    dose_out = outcome.exog_names.index("dose")
    dose_med = mediator.exog_names.index("dose")
    position = outcome.exog_names.index("hads_d_baseline")
    n_med = len(mediator.endog)
    indirect, direct = np.empty(n_rep), np.empty(n_rep)
    for r in range(n_rep):
        fits = []
        for model in (outcome, mediator):  # resampled rows, as Mediation._fit_model
            rows = rng.integers(0, len(model.endog), len(model.endog))
            fits.append(_ols(model.endog[rows], model.exog[rows]))
        (out_params, _), (med_params, med_scale) = fits
        noise = [rng.standard_normal(n_med).mean() for _ in (0, 1)]  # mediator at 0, 1
        shift = med_params[dose_med] + np.sqrt(med_scale) * (noise[1] - noise[0])
        indirect[r] = out_params[position] * shift
        direct[r] = out_params[dose_out]
    return [indirect, indirect.copy()], [direct, direct.copy()]


def _ols(y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, float]:
    """OLS coefficients and residual variance, by the normal equations (a third of the
    time of statsmodels' pseudo-inverse on 700,000 rows). They lose digits as the square
    of the design's condition number, so an ill-conditioned resample (or a rank-deficient
    one: a small cohort missing a covariate level) goes to statsmodels, as in Mediation."""
    gram = x.T @ x
    if np.linalg.cond(gram) > 1e10:  # cond(X) > 1e5: keep at least 6 digits
        fit = sm.OLS(y, x).fit()
        return fit.params, fit.scale
    params = linalg.cho_solve(linalg.cho_factor(gram), x.T @ y)
    resid = y - x @ params
    return params, float(resid @ resid) / (len(y) - x.shape[1])


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


def specification(options: Options) -> Specification:
    run = {
        "estimation": f"statsmodels Mediation, bootstrap, {options.n_rep} replicates, "
        "percentile CIs",
        "seed": options.seed,
    }
    return {"mediation": SPECIFICATION | run}


def fit(views: Views, options: Options) -> Fitted:
    """Mediation on ``analysis_patients``: mediation_effects and mediation_paths."""
    patients = views["analysis_patients"]
    result = fit_mediation(patients, seed=options.seed, n_rep=options.n_rep)
    return Fitted(result, {"mediation_effects": result.effects, "mediation_paths": result.paths})

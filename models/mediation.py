"""Mediation: cumulative ketamine dose -> baseline depression (HADS-D) -> pain change.

Both models are linear, without an exposure-mediator interaction, so the effects are
products and sums of OLS coefficients (Baron & Kenny; VanderWeele 2015, ch. 2):

* mediator: ``hads_d_baseline ~ dose + age + sex``, path ``a`` = its dose coefficient;
* outcome: ``nprs_change ~ dose + hads_d_baseline + age + sex``, path ``b`` = its HADS-D
  coefficient, direct effect ``c'`` = its dose coefficient;
* indirect = a * b; total = a * b + c' (exactly the dose coefficient of
  ``nprs_change ~ dose + age + sex`` on the same patients); proportion = indirect / total.

Point estimates are the sample's. CIs come from a nonparametric bootstrap that resamples
patients (one row each; both models refitted on the same resample, so the paths keep
their covariance, unlike statsmodels' ``Mediation``, whose independent draws double the
spread): percentile, and BCa (bias from the replicates, acceleration from the exact OLS
jackknife). The proportion mediated is published only when the total effect's percentile
CI excludes 0: otherwise its estimate is null and its status says why.

``dose`` is the first year's cumulative dose in units of 100 mg. As in the paper, the
mediator (HADS-D at inclusion) is measured before the exposure (the year's dose): this
is the paper's design reproduced, not a causal order. Patients without a month-12 NPRS
(the outcome), a baseline HADS-D, age or sex are excluded, each counted by reason in
``mediation_sample`` and the manifest; no imputation (see docs/validation.md).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import polars as pl
import statsmodels.formula.api as smf
from scipy import linalg, special, stats

from models.analysis import Fitted, Options, Specification, Views

NAME = "mediation"
DOSE_UNIT_MG = 100.0
MEDIATOR_FORMULA = "hads_d_baseline ~ dose + age + sex"
OUTCOME_FORMULA = "nprs_change ~ dose + hads_d_baseline + age + sex"
OUTCOME_TERMS = 5  # its intercept and four slopes
MODEL_COLUMNS = ("nprs_change", "total_dose_mg", "hads_d_baseline", "age", "sex")
COLUMNS = ("patient_key", *MODEL_COLUMNS, "nprs_baseline", "nprs_one_year")  # what it reads
EFFECTS = ("indirect_acme", "direct_ade", "total", "proportion_mediated")
# Why a patient is left out, checked in this order (the first that applies is counted).
EXCLUSIONS = {
    "no month-12 NPRS (dropped out or missed the call)": pl.col("nprs_one_year").is_null(),
    "no baseline NPRS": pl.col("nprs_baseline").is_null(),
    "no baseline HADS-D score": pl.col("hads_d_baseline").is_null(),
    "age or sex missing": pl.col("age").is_null() | pl.col("sex").is_null(),
}
NOT_ESTIMABLE = "not estimable: the total effect's 95% CI includes 0"
SPECIFICATION = {
    "mediator_model": f"OLS {MEDIATOR_FORMULA}",
    "outcome_model": f"OLS {OUTCOME_FORMULA}",
    "effects": "product of coefficients: indirect = a * b, direct = c', total = a * b + c'",
    "exposure": f"total_dose_mg / {DOSE_UNIT_MG:g} (effects per +{DOSE_UNIT_MG:g} mg)",
    "temporal_order": "the mediator (baseline HADS-D) precedes the exposure (first year's "
    "dose), as in the paper: a reproduction of its design, not a causal mediation",
    "proportion_mediated": "indirect / total, published only when the total effect's 95% "
    "percentile CI excludes 0, otherwise null with status 'not estimable'",
    "missing": "complete cases; exclusions counted by reason (mediation_sample)",
}
C = np.array([0.025, 0.975])


def mediation_data(patients: pl.DataFrame) -> pl.DataFrame:
    """Complete cases, dose in 100 mg units."""
    return (
        patients.select("patient_key", *MODEL_COLUMNS)
        .drop_nulls()
        .with_columns(dose=pl.col("total_dose_mg") / DOSE_UNIT_MG)
    )


def exclusions(patients: pl.DataFrame) -> pl.DataFrame:
    """reason, n_patients: the patients analysed, then each reason for leaving one out
    (the first that applies), every reason listed even when it counts 0."""
    reason = pl.lit("analysed")
    for label, rule in reversed(EXCLUSIONS.items()):
        reason = pl.when(rule).then(pl.lit(label)).otherwise(reason)
    counts = dict(patients.group_by(reason.alias("reason")).len().iter_rows())
    order = ["analysed", *EXCLUSIONS]
    return pl.DataFrame(
        {"reason": order, "n_patients": [counts.get(r, 0) for r in order]},
        schema={"reason": pl.String, "n_patients": pl.Int64},
    )


def design(data: pl.DataFrame) -> np.ndarray:
    """Columns [1, dose, age, male, hads_d, nprs_change], centred (except the 1)."""
    z = np.column_stack(
        [
            data["dose"].to_numpy(),
            data["age"].to_numpy().astype(float),
            (data["sex"] == "M").to_numpy().astype(float),
            data["hads_d_baseline"].to_numpy().astype(float),
            data["nprs_change"].to_numpy().astype(float),
        ]
    )
    return np.column_stack([np.ones(len(z)), z - z.mean(0)])


def paths_from_gram(gram: np.ndarray) -> np.ndarray:
    """(a, b, c') from the weighted Gram matrix of ``design`` (both OLS fits at once)."""
    a = linalg.solve(gram[:4, :4], gram[:4, 4], assume_a="pos")
    beta = linalg.solve(gram[:5, :5], gram[:5, 5], assume_a="pos")
    return np.array([a[1], beta[4], beta[1]])


def effects_of(paths: np.ndarray) -> np.ndarray:
    """(indirect, direct, total, proportion) from (a, b, c') along the last axis."""
    a, b, c = paths[..., 0], paths[..., 1], paths[..., 2]
    total = a * b + c
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.stack([a * b, c, total, a * b / total], axis=-1)


def bootstrap_paths(z: np.ndarray, *, seed: int, n_rep: int) -> tuple[np.ndarray, int]:
    """(a, b, c') of ``n_rep`` patient resamples, and how many were rank-deficient (a
    small cohort's resample without one sex): those are solved by least squares.

    A deficient Gram matrix is rarely exactly singular in floating point: scipy then only
    warns that it is ill-conditioned (reciprocal condition below machine precision) and
    returns numbers that mean nothing. That warning counts as deficient here."""
    rng = np.random.default_rng(seed)
    n, k = z.shape
    rows, cols = np.triu_indices(k)
    products = z[:, rows] * z[:, cols]  # per patient, the Gram matrix's entries
    out, deficient = np.empty((n_rep, 3)), 0
    with warnings.catch_warnings():
        warnings.simplefilter("error", linalg.LinAlgWarning)
        for r in range(n_rep):
            counts = np.bincount(rng.integers(0, n, n), minlength=n).astype(float)
            gram = np.zeros((k, k))
            gram[rows, cols] = counts @ products
            gram = gram + np.triu(gram, 1).T
            try:
                out[r] = paths_from_gram(gram)
            except (linalg.LinAlgError, linalg.LinAlgWarning, ValueError):
                deficient += 1
                out[r] = _least_squares_paths(z, counts)
    return out, deficient


def _least_squares_paths(z: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """(a, b, c') of a rank-deficient resample: minimum-norm least squares."""
    w = np.sqrt(counts)[:, None] * z
    a = np.linalg.lstsq(w[:, :4], w[:, 4], rcond=None)[0]
    beta = np.linalg.lstsq(w[:, :5], w[:, 5], rcond=None)[0]
    return np.array([a[1], beta[4], beta[1]])


def jackknife_paths(z: np.ndarray) -> np.ndarray:
    """(a, b, c') leaving out each patient in turn, exactly and in O(n): for OLS,
    beta_(-i) = beta - (X'X)^-1 x_i e_i / (1 - h_i). NaN if a patient has leverage 1."""
    out = []
    for x, y, index in ((z[:, :4], z[:, 4], 1), (z[:, :5], z[:, 5], 4), (z[:, :5], z[:, 5], 1)):
        inverse = linalg.inv(x.T @ x)
        beta = inverse @ (x.T @ y)
        m = x @ inverse  # row i: x_i'(X'X)^-1
        leverage = np.einsum("ij,ij->i", m, x)
        with np.errstate(divide="ignore", invalid="ignore"):
            out.append(beta[index] - m[:, index] * (y - x @ beta) / (1 - leverage))
    return np.column_stack(out)


def bca_interval(replicates: np.ndarray, estimate: float, jackknife: np.ndarray) -> np.ndarray:
    """BCa 95% bounds (Efron 1987), as ``scipy.stats.bootstrap(method="BCa")`` computes
    them (tests compare) but with a given jackknife; NaN when it is undefined."""
    replicates = replicates[np.isfinite(replicates)]
    if replicates.size == 0 or not np.all(np.isfinite(jackknife)) or not np.isfinite(estimate):
        return np.full(2, np.nan)
    share = ((replicates < estimate).sum() + (replicates <= estimate).sum()) / (2 * replicates.size)
    z0 = special.ndtri(share)
    centred = jackknife.mean() - jackknife
    spread = (centred**2).sum()
    accel = (centred**3).sum() / (6 * spread**1.5) if spread > 0 else 0.0
    quantiles = special.ndtri(C)
    levels = special.ndtr(z0 + (z0 + quantiles) / (1 - accel * (z0 + quantiles)))
    if not np.all(np.isfinite(levels)):
        return np.full(2, np.nan)
    return np.percentile(replicates, 100 * levels)


def effects_table(z: np.ndarray, *, seed: int, n_rep: int) -> pl.DataFrame:
    """One row per effect: sample estimate, bootstrap SE, percentile and BCa CIs, the
    bootstrap p-value, and whether it is published (the proportion's rule)."""
    gram = z.T @ z
    estimate = effects_of(paths_from_gram(gram))
    boot_paths, deficient = bootstrap_paths(z, seed=seed, n_rep=n_rep)
    boot = effects_of(boot_paths)
    jack = effects_of(jackknife_paths(z))
    rows = []
    for j, effect in enumerate(EFFECTS):
        finite = boot[:, j][np.isfinite(boot[:, j])]
        low, high = np.percentile(finite, 100 * C) if finite.size else (np.nan, np.nan)
        bca = bca_interval(boot[:, j], estimate[j], jack[:, j])
        below, above = (finite <= 0).mean(), (finite >= 0).mean()
        rows.append([effect, estimate[j], finite.std(ddof=1), low, high, *bca])
        rows[-1].append(min(1.0, 2 * min(below, above)))
    table = pl.DataFrame(
        rows,
        schema=["effect", "estimate", "std_error", "ci_low", "ci_high", "bca_low", "bca_high"]
        + ["p_value"],
        orient="row",
    )
    return publishable(table).with_columns(
        n=pl.lit(len(z)),
        n_rep=pl.lit(n_rep),
        exposure_contrast=pl.lit(f"+{DOSE_UNIT_MG:g} mg cumulative dose in the first year"),
        rank_deficient_resamples=pl.lit(deficient),
    )


def publishable(table: pl.DataFrame) -> pl.DataFrame:
    """The proportion mediated nulled, with its reason, when the total's CI holds 0."""
    total = table.filter(pl.col("effect") == "total").row(0, named=True)
    excludes_zero = total["ci_low"] > 0 or total["ci_high"] < 0
    hide = (pl.col("effect") == "proportion_mediated") & pl.lit(not excludes_zero)
    numbers = ("estimate", "std_error", "ci_low", "ci_high", "bca_low", "bca_high", "p_value")
    return table.with_columns(
        [pl.when(hide).then(None).otherwise(pl.col(c)).alias(c) for c in numbers]
        + [pl.when(hide).then(pl.lit(NOT_ESTIMABLE)).otherwise(pl.lit("estimated")).alias("status")]
    )


@dataclass
class MediationResult:
    effects: pl.DataFrame  # one row per effect (EFFECTS): estimate, CIs, p, status, n
    paths: pl.DataFrame  # both OLS models: one row per term
    sample: pl.DataFrame  # reason, n_patients: who was analysed and who was not, and why
    n_patients: int
    n_excluded: int


def fit_mediation(patients: pl.DataFrame, *, seed: int, n_rep: int = 1000) -> MediationResult:
    """Product-of-coefficients mediation with a patient bootstrap (seeded)."""
    data = mediation_data(patients)
    if data.height <= OUTCOME_TERMS:  # before the design: no mean of an empty column
        raise ValueError(
            f"{data.height} complete cases for the outcome model's {OUTCOME_TERMS} "
            "coefficients: no residual degree of freedom, not estimable"
        )
    frame = data.to_pandas()
    z = design(data)
    if np.linalg.matrix_rank(z[:, :5]) < 5:
        raise ValueError(
            f"dose, HADS-D, age and sex are collinear (rank-deficient) on the {data.height} "
            "complete cases (e.g. one sex only): not estimable"
        )
    fits = [smf.ols(OUTCOME_FORMULA, frame).fit(), smf.ols(MEDIATOR_FORMULA, frame).fit()]
    effects = effects_table(z, seed=seed, n_rep=n_rep)
    paths = pl.concat([ols_table(fits[0], "outcome"), ols_table(fits[1], "mediator")])
    sample = exclusions(patients)
    return MediationResult(effects, paths, sample, data.height, patients.height - data.height)


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
        "estimation": f"OLS; nonparametric bootstrap of patients, {options.n_rep} "
        "replicates, percentile (ci_low, ci_high) and BCa (bca_low, bca_high) 95% CIs, "
        "two-sided bootstrap p-values",
        "seed": options.seed,
    }
    return {"mediation": SPECIFICATION | run}


def fit(views: Views, options: Options) -> Fitted:
    """Mediation on ``analysis_patients``: mediation_effects, _paths and _sample."""
    result = fit_mediation(views["analysis_patients"], seed=options.seed, n_rep=options.n_rep)
    tables = {
        "mediation_effects": result.effects,
        "mediation_paths": result.paths,
        "mediation_sample": result.sample,
    }
    sample = dict(result.sample.iter_rows())
    status = result.effects.filter(pl.col("effect") == "proportion_mediated")["status"].item()
    record = {"n_used": sample.pop("analysed"), "excluded": sample, "proportion_mediated": status}
    return Fitted(result, tables, {"mediation": record})

"""Pain trajectories: group-based trajectory model of NPRS over months 0-12.

Models with 1 to 5 groups (quadratic trajectory per group, normal outcome, common SD;
see models/mixture.py), each the best of several seeded EM starts. Selection: the lowest
BIC (number of patients as n) among the *adequate* models: every group's average posterior
probability (APP, among patients assigned to it) >= 0.7 and its estimated share >= 5%.
Trajectory CIs: delta method from the inverse observed information (numerical Hessian).
Groups, curves and shares are published for every number of groups, the chosen one marked.

LCGA has no spread within a group: when patients vary around their group's course (as
in the simulator, random intercept SD 1), BIC adds groups to absorb that spread and
tends to pick the largest number tried; read the table, not only the choice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy import stats

from models.analysis import Fitted, Options, Specification, Views
from models.mixture import MixtureFit, fit_mixture, parameter_covariance, posterior

NAME = "trajectory"
MONTHS = np.arange(13)
DEGREE = 2
MAX_GROUPS = 5
MIN_APP = 0.7
MIN_SHARE = 0.05
# Patients the EM is fitted on; a larger cohort is fitted on a seeded random sample of
# this many, and every patient then gets posteriors from the fitted model. The group
# curves of 20,000 patients are far more precise than the model is right (and their CIs
# say so), while fitting a million would take most of a night.
FIT_SAMPLE = 20_000
SELECTION_RULE = (
    f"lowest BIC (n = patients) among models with every group's average posterior "
    f"probability >= {MIN_APP} and estimated share >= {MIN_SHARE:.0%}"
)
SPECIFICATION = {
    "model": "group-based trajectory model (LCGA), normal outcome, common SD, "
    f"polynomial degree {DEGREE} in month/12",
    "groups_tried": f"1-{MAX_GROUPS}",
    "selection_rule": SELECTION_RULE,
    "missing": "each patient's likelihood uses the visits observed",
    "fit_sample": f"all patients up to {FIT_SAMPLE:,}; beyond, a seeded random "
    "sample of that many (BIC and CIs from it), posteriors and tables for every patient",
    "ci": "delta method, inverse observed information (numerical Hessian)",
}


@dataclass
class TrajectoryData:
    patient_keys: list[str]
    y: np.ndarray  # (n, 13) NPRS, 0 where missing
    mask: np.ndarray  # (n, 13) 1 where observed
    design: np.ndarray  # (13, DEGREE + 1) powers of month / 12


@dataclass
class TrajectoryResult:
    selection: pl.DataFrame  # one row per number of groups: fit statistics, adequacy
    groups: pl.DataFrame  # every model: one row per group (``selected`` marks the chosen)
    trajectories: pl.DataFrame  # every model: one row per group and month
    membership: pl.DataFrame  # selected model: one row per patient and group
    chosen: int


def trajectory_data(analysis: pl.DataFrame) -> TrajectoryData:
    """Patients x months matrix of observed NPRS (patients with at least one visit)."""
    wide = (
        analysis.select("patient_key", "month", "nprs")
        .drop_nulls()
        .filter(pl.col("month").is_between(0, 12))
        .pivot(on="month", index="patient_key", values="nprs", aggregate_function="first")
        .sort("patient_key")
    )
    cols = [str(m) for m in MONTHS]
    wide = wide.with_columns(pl.lit(None, pl.Float64).alias(c) for c in cols if c not in wide)
    values = wide.select(pl.col(cols).cast(pl.Float64)).to_numpy()
    mask = (~np.isnan(values)).astype(float)
    design = np.vander(MONTHS / 12, DEGREE + 1, increasing=True)
    return TrajectoryData(wide["patient_key"].to_list(), np.nan_to_num(values), mask, design)


def fitting_sample(data: TrajectoryData, max_patients: int, seed: int) -> TrajectoryData:
    """All patients, or a seeded random sample of ``max_patients`` of them (key order)."""
    n = len(data.patient_keys)
    if n <= max_patients:
        return data
    keep = np.sort(np.random.default_rng([seed, n]).choice(n, max_patients, replace=False))
    keys = [data.patient_keys[i] for i in keep]
    return TrajectoryData(keys, data.y[keep], data.mask[keep], data.design)


def average_posterior(fit: MixtureFit) -> np.ndarray:
    """APP per group: mean posterior of the group among patients assigned to it (modal)."""
    assigned = fit.posterior.argmax(axis=1)
    return np.array(
        [
            fit.posterior[assigned == k, k].mean() if (assigned == k).any() else np.nan
            for k in range(fit.n_groups)
        ]
    )


def selection_table(fits: list[MixtureFit], n_subjects: int) -> pl.DataFrame:
    """BIC, AIC and adequacy per number of groups; ``selected`` marks the chosen one."""
    app = [average_posterior(f) for f in fits]
    table = pl.DataFrame(
        {
            "n_groups": [f.n_groups for f in fits],
            "log_likelihood": [f.log_likelihood for f in fits],
            "n_parameters": [f.n_parameters for f in fits],
            "bic": [f.bic(n_subjects) for f in fits],
            "aic": [-2 * f.log_likelihood + 2 * f.n_parameters for f in fits],
            "min_share": [float(f.shares.min()) for f in fits],
            "min_app": [float(np.nan_to_num(a, nan=0.0).min()) for a in app],
            "converged": [f.converged for f in fits],
            "n_patients": n_subjects,
        }
    )
    return select_model(table)


def select_model(table: pl.DataFrame) -> pl.DataFrame:
    """Mark adequate models and the adequate one with the lowest BIC."""
    table = table.with_columns(
        adequate=(pl.col("min_app") >= MIN_APP) & (pl.col("min_share") >= MIN_SHARE)
    )
    best = table.filter("adequate").sort("bic")["n_groups"].first()
    return table.with_columns(selected=pl.col("n_groups") == best)


def fit_trajectories(
    analysis: pl.DataFrame,
    *,
    seed: int,
    n_starts: int = 20,
    max_groups: int = MAX_GROUPS,
    max_patients: int = FIT_SAMPLE,
) -> TrajectoryResult:
    """Fit 1..max_groups groups, select by BIC with adequacy, describe the chosen model.

    Beyond ``max_patients`` the models are fitted (and their BIC and CIs computed) on a
    seeded random sample of that many patients; posteriors, adequacy and the published
    tables then cover every patient.
    """
    data = trajectory_data(analysis)
    sample = fitting_sample(data, max_patients, seed)
    fits = [
        fit_mixture(sample.y, sample.mask, sample.design, k, n_starts=n_starts, seed=seed)
        for k in range(1, max_groups + 1)
    ]
    covariances = [parameter_covariance(f, sample.y, sample.mask, sample.design) for f in fits]
    if sample is not data:
        for fit in fits:
            fit.posterior = posterior(fit, data.y, data.mask, data.design)
    selection = selection_table(fits, len(sample.patient_keys)).with_columns(
        n_patients_cohort=pl.lit(len(data.patient_keys))
    )
    chosen = int(selection.filter("selected")["n_groups"].item())
    groups, curves = [], []
    for fit, cov in zip(fits, covariances, strict=True):
        groups.append(_tagged(group_table(fit, cov, data), fit.n_groups, chosen))
        curves.append(_tagged(trajectory_table(fit, cov, data), fit.n_groups, chosen))
    return TrajectoryResult(
        selection=selection,
        groups=pl.concat(groups),
        trajectories=pl.concat(curves),
        membership=membership_table(fits[chosen - 1], data.patient_keys),
        chosen=chosen,
    )


def standard_error(variance: np.ndarray) -> np.ndarray:
    """Square root; NaN where a degenerate fit gives a negative or undefined variance."""
    return np.sqrt(np.where(variance >= 0, variance, np.nan))


def _tagged(table: pl.DataFrame, n_groups: int, chosen: int) -> pl.DataFrame:
    """Prefix a model's table with its number of groups and whether it was selected."""
    tags = [pl.lit(n_groups).alias("n_groups"), pl.lit(n_groups == chosen).alias("selected")]
    return table.select(*tags, pl.all())


def group_table(fit: MixtureFit, cov: np.ndarray, data: TrajectoryData) -> pl.DataFrame:
    """Per group: estimated share (delta-method CI), modal size, APP, coefficients/month."""
    k = fit.n_groups
    jac = np.diag(fit.shares) - np.outer(fit.shares, fit.shares)  # d share / d logit
    share_se = standard_error(np.diag(jac[:, 1:] @ cov[: k - 1, : k - 1] @ jac[:, 1:].T))
    assigned = fit.posterior.argmax(axis=1)
    z = stats.norm.ppf(0.975)
    per_month = 12.0 ** -np.arange(DEGREE + 1)
    return pl.DataFrame(
        {
            "group": np.arange(1, k + 1),
            "share": fit.shares,
            "share_std_error": share_se,
            "share_ci_low": fit.shares - z * share_se,
            "share_ci_high": fit.shares + z * share_se,
            "n_assigned": np.bincount(assigned, minlength=k),
            "assigned_share": np.bincount(assigned, minlength=k) / len(assigned),
            "app": average_posterior(fit),
            "intercept": fit.betas[:, 0],
            "slope_per_month": fit.betas[:, 1] * per_month[1],
            "quadratic_per_month2": fit.betas[:, 2] * per_month[2],
            "residual_sd": fit.sigma,
        }
    )


def trajectory_table(fit: MixtureFit, cov: np.ndarray, data: TrajectoryData) -> pl.DataFrame:
    """Per group and month: fitted mean NPRS with its 95% CI, and the weighted observed mean."""
    k, p = fit.n_groups, data.design.shape[1]
    z = stats.norm.ppf(0.975)
    rows = []
    for g in range(k):
        block = cov[k - 1 + g * p : k - 1 + (g + 1) * p, k - 1 + g * p : k - 1 + (g + 1) * p]
        mean = data.design @ fit.betas[g]
        se = standard_error(np.einsum("tp,pq,tq->t", data.design, block, data.design))
        weight = fit.posterior[:, g][:, None] * data.mask
        observed = (weight * data.y).sum(axis=0) / weight.sum(axis=0)
        rows.append(
            pl.DataFrame(
                {
                    "group": g + 1,
                    "month": MONTHS,
                    "estimate": mean,
                    "std_error": se,
                    "ci_low": mean - z * se,
                    "ci_high": mean + z * se,
                    "observed_mean": observed,
                    "n_observed": data.mask[fit.posterior.argmax(axis=1) == g].sum(axis=0),
                }
            )
        )
    return pl.concat(rows)


def membership_table(fit: MixtureFit, patient_keys: list[str]) -> pl.DataFrame:
    """Per patient and group: posterior probability, and whether it is the modal group."""
    n, k = fit.posterior.shape
    assigned = fit.posterior.argmax(axis=1)
    return pl.DataFrame(
        {
            "patient_key": np.repeat(patient_keys, k),
            "group": np.tile(np.arange(1, k + 1), n),
            "posterior_probability": fit.posterior.ravel(),
            "assigned": (np.tile(np.arange(k), n) == np.repeat(assigned, k)),
        }
    )


def specification(options: Options) -> Specification:
    run = {
        "estimation": f"EM, best of {options.n_starts} seeded random starts per number of groups",
        "seed": options.seed,
    }
    return {"trajectory": SPECIFICATION | run}


def fit(views: Views, options: Options) -> Fitted:
    """Trajectories of ``analysis_patient_months``: trajectory_* tables."""
    months = views["analysis_patient_months"]
    result = fit_trajectories(months, seed=options.seed, n_starts=options.n_starts)
    tables = {
        "trajectory_selection": result.selection,
        "trajectory_groups": result.groups,
        "trajectory_curves": result.trajectories,
        "trajectory_membership": result.membership,
    }
    return Fitted(result, tables, converged=bool(result.selection["converged"].all()))

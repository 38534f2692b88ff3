"""The published tables of a fitted trajectory model (models.trajectory): fit statistics,
groups, curves and memberships.

Classification statistics follow Nagin (2005): the average posterior probability of
assignment (APPA) of a group is the mean posterior of that group among the patients
assigned to it (modal assignment); the relative entropy is
``1 - sum(-p log p) / (n log K)`` (1: perfectly separated groups; undefined for K = 1).
"""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy import stats
from scipy.special import comb

from models.growth_mixture import GmmFit

Z_95 = float(stats.norm.ppf(0.975))
MONTHS = np.arange(13)
MONTHS_PER_UNIT = 12.0  # the design's time is month / 12


def average_posterior(posterior: np.ndarray) -> np.ndarray:
    """APPA per group: mean posterior of the group among patients assigned to it."""
    assigned = posterior.argmax(axis=1)
    return np.array(
        [
            posterior[assigned == k, k].mean() if (assigned == k).any() else np.nan
            for k in range(posterior.shape[1])
        ]
    )


def relative_entropy(posterior: np.ndarray) -> float | None:
    """1 - (classification entropy) / (n log K); None for a single group."""
    n, k = posterior.shape
    if k < 2:
        return None
    p = np.clip(posterior, 1e-300, 1.0)
    return float(1 + (posterior * np.log(p)).sum() / (n * np.log(k)))


def standard_error(variance: np.ndarray) -> np.ndarray:
    """Square root; NaN where a degenerate fit gives a negative or undefined variance."""
    return np.sqrt(np.where(variance >= 0, variance, np.nan))


def random_effects(fit: GmmFit) -> dict[str, float | None]:
    """The within-group spread: random intercept SD, slope SD per month, their
    correlation, residual SD (None where the model has no such random effect)."""
    g = fit.params.covariance
    q = len(g)
    intercept = float(np.sqrt(g[0, 0])) if q > 0 else None
    slope = float(np.sqrt(g[1, 1])) / MONTHS_PER_UNIT if q > 1 else None
    corr = float(g[0, 1] / np.sqrt(g[0, 0] * g[1, 1])) if q > 1 and g[0, 0] * g[1, 1] > 0 else None
    return {
        "random_intercept_sd": intercept,
        "random_slope_sd_per_month": slope,
        "random_correlation": corr,
        "residual_sd": fit.params.sigma,
    }


def selection_rows(fits: list[GmmFit], model: str) -> pl.DataFrame:
    """One row per number of groups: likelihood, criteria, classification, spread."""
    rows = []
    for fit in fits:
        n = len(fit.posterior)
        app = np.nan_to_num(average_posterior(fit.posterior), nan=0.0)
        rows.append(
            {
                "model": model,
                "n_groups": fit.n_groups,
                "log_likelihood": fit.log_likelihood,
                "n_parameters": fit.n_parameters,
                "bic": fit.bic(n),
                "aic": -2 * fit.log_likelihood + 2 * fit.n_parameters,
                "entropy": relative_entropy(fit.posterior),
                "min_app": float(app.min()),
                "min_share": float(fit.params.shares.min()),
                "converged": fit.converged,
                "starts": fit.starts,
                "starts_agreeing": fit.replicated,
                "singular_random_effects": fit.at_boundary,
                **random_effects(fit),
                "n_patients": n,
            }
        )
    return pl.DataFrame(rows, infer_schema_length=None)


def group_table(fit: GmmFit) -> pl.DataFrame:
    """Per group: estimated share (delta-method CI), modal size, APPA, coefficients/month."""
    k, shares = fit.n_groups, fit.params.shares
    jac = np.diag(shares) - np.outer(shares, shares)  # d share / d logit
    cov = fit.covariance[: k - 1, : k - 1]
    share_se = standard_error(np.diag(jac[:, 1:] @ cov @ jac[:, 1:].T))
    assigned = np.bincount(fit.posterior.argmax(axis=1), minlength=k)
    per_month = MONTHS_PER_UNIT ** -np.arange(fit.params.betas.shape[1])
    return pl.DataFrame(
        {
            "group": np.arange(1, k + 1),
            "share": shares,
            "share_std_error": share_se,
            "share_ci_low": shares - Z_95 * share_se,
            "share_ci_high": shares + Z_95 * share_se,
            "n_assigned": assigned,
            "assigned_share": assigned / max(len(fit.posterior), 1),
            "app": average_posterior(fit.posterior),
            "intercept": fit.params.betas[:, 0],
            "slope_per_month": fit.params.betas[:, 1] * per_month[1],
            "quadratic_per_month2": fit.params.betas[:, 2] * per_month[2],
        }
    )


def trajectory_table(fit: GmmFit, visits: tuple[np.ndarray, np.ndarray, np.ndarray]):
    """Per group and month: fitted mean NPRS with its 95% CI, the posterior-weighted mean
    of the NPRS observed, and how many visits of patients assigned to the group."""
    patient, month, nprs = visits
    k, p = fit.params.betas.shape
    design = np.vander(MONTHS / MONTHS_PER_UNIT, p, increasing=True)
    assigned = fit.posterior.argmax(axis=1)[patient]
    rows = []
    for g in range(k):
        start = k - 1 + g * p
        block = fit.covariance[start : start + p, start : start + p]
        mean = design @ fit.params.betas[g]
        se = standard_error(np.einsum("tp,pq,tq->t", design, block, design))
        weight = fit.posterior[patient, g]
        with np.errstate(invalid="ignore", divide="ignore"):
            observed = np.bincount(month, weight * nprs, 13) / np.bincount(month, weight, 13)
        rows.append(
            pl.DataFrame(
                {
                    "group": g + 1,
                    "month": MONTHS,
                    "estimate": mean,
                    "std_error": se,
                    "ci_low": mean - Z_95 * se,
                    "ci_high": mean + Z_95 * se,
                    "observed_mean": observed,
                    "n_observed": np.bincount(month[assigned == g], minlength=13),
                }
            )
        )
    return pl.concat(rows)


def adjusted_rand_index(a: np.ndarray, b: np.ndarray) -> float:
    """Hubert and Arabie's adjusted Rand index of two labelings (1: the same partition,
    about 0: chance agreement); sklearn's ``adjusted_rand_score``, written with comb."""
    _, a = np.unique(a, return_inverse=True)
    _, b = np.unique(b, return_inverse=True)
    table = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(table, (a, b), 1)
    pairs = comb(table, 2).sum()
    rows, cols = comb(table.sum(axis=1), 2).sum(), comb(table.sum(axis=0), 2).sum()
    expected = rows * cols / comb(len(a), 2)
    ceiling = (rows + cols) / 2
    return 1.0 if ceiling == expected else float((pairs - expected) / (ceiling - expected))


def membership_table(posterior: np.ndarray, patient_keys: pl.Series) -> pl.DataFrame:
    """Per patient and group: posterior probability, and whether it is the modal group."""
    n, k = posterior.shape
    assigned = posterior.argmax(axis=1) if n else np.zeros(0, np.int64)
    group = np.tile(np.arange(k), n)
    return pl.DataFrame(
        {
            "patient_key": patient_keys.cast(pl.String).gather(np.repeat(np.arange(n), k)),
            "group": group + 1,
            "posterior_probability": posterior.ravel(),
            "assigned": group == np.repeat(assigned, k),
        }
    )

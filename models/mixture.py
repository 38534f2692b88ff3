"""Latent class growth mixture (group-based trajectory model), fitted by EM with numpy.

Each patient belongs to one of K groups; within group k the outcome at time t is normal
with mean ``x_t' beta_k`` (a polynomial in time) and a common SD ``sigma``; no random
effects within groups (LCGA, Nagin's semiparametric group-based model with a normal
outcome). Missing visits drop out of a patient's likelihood (``mask``), so every patient
contributes the visits they have (valid under MAR). Written here because no maintained
Python package fits polynomial group trajectories (stepmix fits a free mean per visit).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp, softmax
from statsmodels.tools.numdiff import approx_hess3

Array = np.ndarray  # y, mask: (subjects, times); design: (times, P); betas: (K, P)
LOG_2PI = np.log(2 * np.pi)
RIDGE = 1e-9  # keeps a group's normal equations solvable if it empties during EM


@dataclass
class MixtureFit:
    """One fitted K-group model: parameters, fit statistics, posterior probabilities."""

    shares: np.ndarray  # (K,) estimated group proportions
    betas: np.ndarray  # (K, P) polynomial coefficients, in the design's time units
    sigma: float
    log_likelihood: float
    posterior: np.ndarray  # (n, K)
    iterations: int
    converged: bool

    @property
    def n_groups(self) -> int:
        return len(self.shares)

    @property
    def n_parameters(self) -> int:
        return self.betas.size + self.n_groups - 1 + 1

    def bic(self, n_subjects: int) -> float:
        """Schwarz criterion with the number of subjects (Nagin), lower is better."""
        return -2 * self.log_likelihood + self.n_parameters * np.log(n_subjects)


@dataclass(frozen=True)
class SubjectSums:
    """What the likelihood needs of each subject: its observed visits' count and sums.

    Within group k a subject's residual sum of squares is
    ``y'y - 2 beta_k' X'y + beta_k' X'X beta_k`` (observed visits only), so every E and M
    step works on these (n, P*P + P + 2) arrays instead of (n, K, T) residuals: about
    four times less arithmetic per EM iteration with 13 visits and a quadratic design.
    """

    n_visits: Array  # (n,)
    yy: Array  # (n,)
    xy: Array  # (n, P)
    xx: Array  # (n, P*P), row-major X'X

    @classmethod
    def of(cls, y: Array, mask: Array, design: Array) -> SubjectSums:
        outer = (design[:, :, None] * design[:, None, :]).reshape(len(design), -1)
        observed = mask * y
        return cls(mask.sum(axis=1), (observed * y).sum(axis=1), observed @ design, mask @ outer)


def residual_ss(sums: SubjectSums, betas: Array) -> Array:
    """(n, K) residual sum of squares of each subject's visits under each group."""
    quadratic = (betas[:, :, None] * betas[:, None, :]).reshape(len(betas), -1)
    return sums.yy[:, None] - 2 * sums.xy @ betas.T + sums.xx @ quadratic.T


def component_loglik(sums: SubjectSums, betas: Array, sigma: float) -> Array:
    """(n, K) log-density of each subject's observed visits under each group."""
    constant = (0.5 * LOG_2PI + np.log(sigma)) * sums.n_visits
    return -0.5 * residual_ss(sums, betas) / sigma**2 - constant[:, None]


def e_step(sums: SubjectSums, shares: Array, betas: Array, sigma: float) -> tuple[Array, float]:
    """Posterior group probabilities and the observed-data log-likelihood."""
    joint = component_loglik(sums, betas, sigma) + np.log(shares)
    total = logsumexp(joint, axis=1)
    return np.exp(joint - total[:, None]), float(total.sum())


def m_step(sums: SubjectSums, post: Array) -> tuple[Array, Array, float]:
    """Closed-form maximisation: weighted least squares per group, pooled sigma."""
    p = sums.xy.shape[1]
    lhs = (post.T @ sums.xx).reshape(-1, p, p) + RIDGE * np.eye(p)
    betas = np.linalg.solve(lhs, (post.T @ sums.xy)[..., None])[..., 0]
    rss = np.maximum(residual_ss(sums, betas), 0.0)  # rounding: a perfect fit is 0, not -0
    sigma = float(np.sqrt((post * rss).sum() / sums.n_visits.sum()))
    return post.mean(axis=0), betas, sigma


def run_em(
    sums: SubjectSums,
    betas: Array,
    sigma: float,
    *,
    max_iter: int = 1000,
    tol: float = 1e-9,
) -> MixtureFit:
    """EM from starting trajectories until the log-likelihood gains < tol (relative)."""
    shares = np.full(len(betas), 1 / len(betas))
    previous = -np.inf
    for iteration in range(1, max_iter + 1):
        post, loglik = e_step(sums, shares, betas, sigma)
        if loglik - previous < tol * abs(loglik):
            return MixtureFit(shares, betas, sigma, loglik, post, iteration, True)
        previous = loglik
        shares, betas, sigma = m_step(sums, post)
    return MixtureFit(shares, betas, sigma, loglik, post, max_iter, False)


def posterior(fit: MixtureFit, y: Array, mask: Array, design: Array) -> Array:
    """(n, K) posterior group probabilities of any subjects under a fitted model."""
    return e_step(SubjectSums.of(y, mask, design), fit.shares, fit.betas, fit.sigma)[0]


def random_start(
    y: Array, mask: Array, design: Array, k: int, rng: np.random.Generator
) -> tuple[Array, float]:
    """Pooled trajectory shifted to k distinct subjects' mean levels, pooled SD."""
    pooled = np.linalg.lstsq(design[np.nonzero(mask)[1]], y[mask > 0], rcond=None)[0]
    levels = (mask * y).sum(axis=1) / mask.sum(axis=1)
    centres = np.sort(rng.choice(levels, k, replace=False)) + rng.normal(0, 0.05, k)
    betas = np.tile(pooled, (k, 1))
    betas[:, 0] += centres - levels.mean()
    return betas, float(np.nanstd(np.where(mask > 0, y, np.nan)))


def fit_mixture(
    y: Array, mask: Array, design: Array, k: int, *, n_starts: int, seed: int
) -> MixtureFit:
    """Best of ``n_starts`` seeded EM runs (the same seed gives the same fit)."""
    rng = np.random.default_rng([seed, k])
    sums = SubjectSums.of(y, mask, design)
    best: MixtureFit | None = None
    for _ in range(n_starts):
        fit = run_em(sums, *random_start(y, mask, design, k, rng))
        if best is None or fit.log_likelihood > best.log_likelihood + 1e-8:
            best = fit
    if best is None:
        raise ValueError(f"n_starts must be at least 1, not {n_starts}")
    return order_groups(best, design)


def order_groups(fit: MixtureFit, design: Array) -> MixtureFit:
    """Groups numbered from the lowest to the highest mean trajectory (stable labels)."""
    order = np.argsort((fit.betas @ design.T).mean(axis=1))
    fit.shares, fit.betas, fit.posterior = (
        fit.shares[order],
        fit.betas[order],
        fit.posterior[:, order],
    )
    return fit


def pack(fit: MixtureFit) -> Array:
    """Free parameters: share logits against group 1, coefficients, log sigma."""
    logits = np.log(fit.shares[1:]) - np.log(fit.shares[0])
    return np.concatenate([logits, fit.betas.ravel(), [np.log(fit.sigma)]])


def loglik_at(theta: Array, sums: SubjectSums, k: int) -> float:
    """Observed-data log-likelihood at packed parameters (for the numerical Hessian)."""
    shares = softmax(np.concatenate([[0.0], theta[: k - 1]]))
    betas = theta[k - 1 : -1].reshape(k, sums.xy.shape[1])
    joint = component_loglik(sums, betas, np.exp(theta[-1])) + np.log(shares)
    return float(logsumexp(joint, axis=1).sum())


def parameter_covariance(fit: MixtureFit, y: Array, mask: Array, design: Array) -> Array:
    """Inverse observed information (numerical Hessian of the log-likelihood)."""
    k = fit.n_groups
    theta = pack(fit)
    hessian = approx_hess3(theta, loglik_at, args=(SubjectSums.of(y, mask, design), k))
    if not np.isfinite(hessian).all():  # an emptied group: no information, CIs undefined
        return np.full((theta.size, theta.size), np.nan)
    return np.linalg.pinv(-hessian)

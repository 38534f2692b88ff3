"""The REML/ML optimum of a likelihood: L-BFGS-B on the Cholesky factor of Psi, then Newton.

The optimiser sees three parameters, the lower triangle of the Cholesky factor L of
``Psi = L L'`` (diagonal >= 0, as lme4), and the deviance per observation with its
analytic gradient. Newton steps in Psi then polish the L-BFGS-B solution, whose line
search may stop a little short of the optimum.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize

from models.mixed.inference import cholesky_factor, deviance_at_sigma, satterthwaite_df
from models.mixed.likelihood import BASIS, Likelihood, Profile
from models.mixed.sums import LOWER, DesignSums, starting_theta


def psi_of(theta: np.ndarray) -> np.ndarray:
    """Psi = L L' from the packed lower triangle of L."""
    chol = np.zeros((2, 2))
    chol[LOWER] = theta
    return chol @ chol.T


def objective(
    theta: np.ndarray, sums: DesignSums, likelihood: Likelihood
) -> tuple[float, np.ndarray]:
    """Deviance per observation and its gradient in the Cholesky factor (dPsi = dL L' + L dL')."""
    chol = np.zeros((2, 2))
    chol[LOWER] = theta
    p = likelihood.profile(chol @ chol.T, sums)
    grad = 2 * likelihood.gradient(p, sums) @ chol
    return p.deviance / sums.n_observations, grad[LOWER] / sums.n_observations


def newton_polish(p: Profile, sums: DesignSums, likelihood: Likelihood) -> tuple[Profile, bool]:
    """Newton steps in Psi on the profiled deviance, from an L-BFGS-B solution.

    Its Hessian is the Schur complement of the beta block in ``likelihood.hessian`` (the
    observed Hessian of the log-likelihood in (beta, psi)); a step is taken only if Psi
    stays positive definite and the deviance does not rise, so on the boundary (singular
    Psi) the L-BFGS-B solution stands. Converged = a step below 1e-9.
    """
    k = p.beta.size
    for _ in range(likelihood.newton_steps):
        hess = -2 * likelihood.hessian(p, sums)
        hess_psi = hess[k:, k:] - hess[k:, :k] @ np.linalg.solve(hess[:k, :k], hess[:k, k:])
        grad = likelihood.gradient(p, sums)
        try:
            step = -np.linalg.solve(hess_psi, [grad[0, 0], 2 * grad[1, 0], grad[1, 1]])
        except np.linalg.LinAlgError:
            return p, False
        psi = p.psi + np.einsum("j,jab->ab", step, BASIS)
        if np.any(np.linalg.eigvalsh(psi) <= 0) or np.any(np.linalg.eigvalsh(hess_psi) <= 0):
            return p, False
        new = likelihood.profile(psi, sums)
        if new.deviance > p.deviance + 1e-12 * abs(p.deviance):
            return p, False
        p = new
        if np.max(np.abs(step)) <= 1e-9 * (1 + np.max(np.abs(psi))):
            return p, True
    return p, False


def optimise(sums: DesignSums, likelihood: Likelihood) -> tuple[Profile, bool]:
    """The profile at the REML/ML optimum, and whether either method converged."""
    result = optimize.minimize(
        objective,
        starting_theta(sums),
        args=(sums, likelihood),
        jac=True,
        method="L-BFGS-B",
        bounds=[(0, None), (None, None), (0, None)],
        options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 1000},
    )
    p, polished = newton_polish(likelihood.profile(psi_of(result.x), sums), sums, likelihood)
    return p, polished or bool(result.success)


def fixed_effect_inference(
    p: Profile, sums: DesignSums, likelihood: Likelihood
) -> tuple[np.ndarray, np.ndarray]:
    """SEs (lme4's convention) and Satterthwaite df (lmerTest's) of the fixed effects at
    the optimum ``p``, in the fitted time scale (``models.mixed.inference`` says how)."""
    sigma = np.sqrt(p.q / sums.df)
    se = np.sqrt(np.diag(np.linalg.inv(p.s))) * sigma
    varpar = np.append(cholesky_factor(p.psi)[LOWER], sigma)

    def at(v: np.ndarray) -> Profile:
        return likelihood.profile(psi_of(v[:3]), sums)

    def deviance(v: np.ndarray) -> float:
        q = at(v)
        return deviance_at_sigma(q.deviance, q.q, sums.df, v[3])

    def covariance(v: np.ndarray) -> np.ndarray:
        return v[3] ** 2 * np.linalg.inv(at(v).s)

    return se, satterthwaite_df(varpar, deviance, covariance)

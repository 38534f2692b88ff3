"""Exact fit of the random intercept and slope model from per-patient sufficient statistics.

Why: statsmodels MixedLM loops over patients in Python at every likelihood evaluation
(about 10 s for 2,000 patients, design.md); the nightly cohort will reach tens of
thousands. For ``y_i = X_i beta + Z_i b_i + e_i`` with ``Z_i = X_i = [1, t]``,
``b_i ~ N(0, G)``, ``e_i ~ N(0, sigma^2 I)``, write ``V_i = sigma^2 W_i`` with
``W_i = I + Z_i Psi Z_i'`` and ``Psi = G / sigma^2``. The Woodbury identity
(Henderson & Searle 1981, SIAM Review 23:53; push-through form, valid for singular Psi)

    W_i^{-1} = I - Z_i (I + Psi A_i)^{-1} Psi Z_i',    A_i = Z_i'Z_i,

and Sylvester's determinant identity ``|W_i| = |I + Psi A_i|`` make every term of the
likelihood a function of six per-patient sums (``A_i``, ``c_i = Z_i'y_i``, ``y_i'y_i``):

    X_i'W_i^{-1}X_i = (I + A_i Psi)^{-1} A_i,   X_i'W_i^{-1}y_i = (I + A_i Psi)^{-1} c_i,
    y_i'W_i^{-1}y_i = y_i'y_i - c_i' Psi (I + A_i Psi)^{-1} c_i.

beta (GLS) and sigma^2 are profiled out as in lme4 (Bates et al. 2015, JSS 67(1), eq. 41)
and statsmodels, so the optimiser sees three parameters, the Cholesky factor of Psi.
Every 2x2 operation is vectorised over patients, so one evaluation costs a few numpy
passes over arrays of length n_patients, not over rows.

The log-likelihood (constants included), the REML/ML choice, and the fixed-effect
standard errors (inverse observed Hessian of the sigma-profiled log-likelihood in
(beta, Psi), as statsmodels' ``bse_fe``) are statsmodels' own, so the results are those
of ``fit_growth_model`` with ``fixed = time``, and statsmodels stays the reference.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import polars as pl
from scipy import optimize, stats

from models.lmm import GrowthModelFit

# dPsi / dpsi_j for the packed lower triangle (psi_11, psi_21, psi_22), as statsmodels.
BASIS = np.array([[[1.0, 0.0], [0.0, 0.0]], [[0.0, 1.0], [1.0, 0.0]], [[0.0, 0.0], [0.0, 1.0]]])
LOWER = (np.array([0, 1, 1]), np.array([0, 0, 1]))


@dataclass(frozen=True)
class PatientSums:
    """Per-patient sufficient statistics (time already divided by the time scale).

    Symmetric 2x2 matrices are stored by their entries (00, 01, 11) in rows, so every
    per-patient operation is an elementwise pass over arrays of length n_patients.
    """

    xtx: np.ndarray  # (3, k): n_i, sum t, sum t^2
    xty: np.ndarray  # (2, k): sum (y - y_shift), sum t (y - y_shift)
    yty: np.ndarray  # (k,): sum (y - y_shift)^2
    y_shift: float  # mean of y, subtracted against cancellation in y'y (shifts beta_0 only)
    n_observations: int
    reml: bool

    @property
    def df(self) -> int:
        """N - p under REML, N under ML: the power of sigma^2 in the likelihood."""
        return self.n_observations - (2 if self.reml else 0)


def patient_sums(
    data: pd.DataFrame, outcome: str, time: str, group: str, time_scale: float, reml: bool
) -> PatientSums:
    """Reduce rows to per-patient sums with one ``bincount`` per sum (rows with NA dropped)."""
    frame = data[[outcome, time, group]].dropna()
    if frame.empty:
        raise ValueError(f"no rows with {outcome}, {time} and {group} all present")
    codes, _ = pd.factorize(frame[group], sort=False)
    t = frame[time].to_numpy(dtype=float) / time_scale
    y = frame[outcome].to_numpy(dtype=float)
    y_shift = float(y.mean())
    y = y - y_shift
    k = int(codes.max()) + 1

    def total(weights):
        return np.bincount(codes, weights=weights, minlength=k)

    xtx = np.array([total(None), total(t), total(t * t)])
    return PatientSums(xtx, np.array([total(y), total(t * y)]), total(y * y), y_shift, len(y), reml)


def full(sym: np.ndarray) -> np.ndarray:
    """(3, k) symmetric entries -> (k, 2, 2) matrices."""
    return np.moveaxis(np.array([[sym[0], sym[1]], [sym[1], sym[2]]]), -1, 0)


def packed(matrix: np.ndarray) -> np.ndarray:
    return np.array([matrix[0, 0], matrix[0, 1], matrix[1, 1]])


@dataclass
class Profile:
    """The sigma- and beta-profiled likelihood at one Psi, with the pieces derivatives need."""

    psi: np.ndarray  # (2, 2) relative covariance G / sigma^2
    h: np.ndarray  # (3, k) X_i'W_i^{-1}X_i, entries 00, 01, 11
    v: np.ndarray  # (2, k) Z_i'W_i^{-1}(y_i - X_i beta)
    s: np.ndarray  # (2, 2) sum of H_i
    beta: np.ndarray  # (2,) GLS estimate (of the shifted outcome)
    q: float  # sum of r_i'W_i^{-1}r_i
    deviance: float  # -2 log-likelihood, statsmodels' constants


def profile(psi: np.ndarray, sums: PatientSums) -> Profile:
    """The profiled -2 log-likelihood at ``psi``, from the Woodbury identities above.

    B_i = I + A_i Psi is inverted by its adjugate; |W_i| = |B_i| (Sylvester).
    """
    (a0, a1, a2), (c0, c1), (p0, p1, p2) = sums.xtx, sums.xty, packed(psi)
    b00, b01 = 1 + a0 * p0 + a1 * p1, a0 * p1 + a1 * p2
    b10, b11 = a1 * p0 + a2 * p1, 1 + a1 * p1 + a2 * p2
    det = b00 * b11 - b01 * b10
    h = np.array([b11 * a0 - b01 * a1, b11 * a1 - b01 * a2, b00 * a2 - b10 * a1]) / det
    u = np.array([b11 * c0 - b01 * c1, b00 * c1 - b10 * c0]) / det
    ywy = sums.yty.sum() - (c0 * (p0 * u[0] + p1 * u[1]) + c1 * (p1 * u[0] + p2 * u[1])).sum()
    s = full(h.sum(1)[:, None])[0]
    beta = np.linalg.solve(s, u.sum(1))
    q = float(ywy - u.sum(1) @ beta)
    v = u - np.array([h[0] * beta[0] + h[1] * beta[1], h[1] * beta[0] + h[2] * beta[1]])
    m = sums.df
    dev = np.log(det).sum() + m * np.log(2 * np.pi * q / m) + m
    if sums.reml:
        dev += np.linalg.slogdet(s)[1]
    return Profile(psi, h, v, s, beta, q, float(dev))


def psi_gradient(p: Profile, sums: PatientSums) -> np.ndarray:
    """d deviance / dPsi as a symmetric 2x2 matrix D, i.e. d deviance = tr(D dPsi).

    d log|W_i| = tr(H_i dPsi), d log|S| = -tr(sum H_i S^{-1} H_i dPsi) and, beta being at
    its GLS optimum (envelope), d q = -sum v_i' dPsi v_i (H_i = Z_i'W_i^{-1}Z_i).
    """
    v0, v1 = p.v
    vv = np.array([_dot(v0, v0), _dot(v0, v1), _dot(v1, v1)])
    grad = packed(p.s) - (sums.df / p.q) * vv
    if sums.reml:  # sum H_i S^{-1} H_i, entry by entry, from sums of products of H_i entries
        h0, h1, h2 = p.h
        i0, i1, i2 = packed(np.linalg.inv(p.s))
        pairs = [(h0, h0), (h0, h1), (h1, h1), (h0, h2), (h1, h2), (h2, h2)]
        g00, g01, g11, g02, g12, g22 = (_dot(x, y) for x, y in pairs)
        grad -= np.array(
            [
                i0 * g00 + 2 * i1 * g01 + i2 * g11,
                i0 * g01 + i1 * (g02 + g11) + i2 * g12,
                i0 * g11 + 2 * i1 * g12 + i2 * g22,
            ]
        )
    return full(grad[:, None])[0]


def _psi_of(theta: np.ndarray) -> np.ndarray:
    chol = np.zeros((2, 2))
    chol[LOWER] = theta
    return chol @ chol.T


def _objective(theta: np.ndarray, sums: PatientSums) -> tuple[float, np.ndarray]:
    """Deviance per observation and its gradient in the Cholesky factor (dPsi = dL L' + L dL')."""
    chol = np.zeros((2, 2))
    chol[LOWER] = theta
    p = profile(chol @ chol.T, sums)
    grad = 2 * psi_gradient(p, sums) @ chol
    return p.deviance / sums.n_observations, grad[LOWER] / sums.n_observations


def starting_theta(sums: PatientSums) -> np.ndarray:
    """Cholesky factor of a moment estimate of Psi from per-patient OLS lines.

    cov(b_i_ols) = G + sigma^2 E[(X_i'X_i)^{-1}]; patients with fewer than three visits or
    one distinct time are left out. Falls back to Psi = I if too few patients are left.
    """
    a0, a1, a2 = sums.xtx
    det = a0 * a2 - a1**2
    ok = (a0 >= 3) & (det > 1e-9 * a0 * a2)
    if ok.sum() < 3:
        return np.array([1.0, 0.0, 1.0])
    a0, a1, a2, det = a0[ok], a1[ok], a2[ok], det[ok]
    c0, c1 = sums.xty[:, ok]
    b = np.array([a2 * c0 - a1 * c1, a0 * c1 - a1 * c0]) / det  # OLS line per patient
    sigma2 = max((sums.yty[ok] - c0 * b[0] - c1 * b[1]).sum() / (a0 - 2).sum(), 1e-12)
    g = np.cov(b) - sigma2 * full((np.array([a2, -a1, a0]) / det).mean(1)[:, None])[0]
    values, vectors = np.linalg.eigh(g / sigma2)
    psi = vectors @ np.diag(np.maximum(values, 1e-3 * max(values.max(), 1e-6))) @ vectors.T
    return np.linalg.cholesky(psi)[LOWER]


def loglike_hessian(p: Profile, sums: PatientSums) -> np.ndarray:
    """Observed Hessian of statsmodels' sigma-profiled log-likelihood in (beta, psi).

    The order (beta_0, beta_1, psi_11, psi_21, psi_22) and the parametrisation (Psi itself,
    not its square root) are those of ``MixedLM.hessian``, whose inverse gives ``bse_fe``;
    the beta-Psi block is not zero on unbalanced data, so it must be kept to match.
    Uses dH_i = -H_i dPsi H_i and dv_i = -H_i dPsi v_i (E_j = dPsi / dpsi_j).
    """
    m, q, h, v = sums.df, p.q, full(p.h), p.v.T
    he = h[:, None] @ BASIS  # (k, 3, 2, 2): H_i E_j
    ev = (BASIS @ v[:, None, :, None])[..., 0]  # (k, 3, 2): E_j v_i
    hev = (h[:, None] @ ev[..., None])[..., 0]  # H_i E_j v_i
    dq = -np.array([_dot(ev[:, j], v) for j in range(3)])
    d2q = 2 * np.array([[_dot(ev[:, j], hev[:, m]) for m in range(3)] for j in range(3)])
    d2 = -_trace_products(he, he) + m * (d2q / q - np.outer(dq, dq) / q**2)
    if sums.reml:
        d2 += _logdet_s_hessian(p.s, h, he)
    hess = np.zeros((5, 5))
    hess[:2, :2] = -(m / q) * p.s
    hess[:2, 2:] = -(m / q) * hev.sum(0).T
    hess[2:, :2] = hess[:2, 2:].T
    hess[2:, 2:] = -0.5 * d2
    return hess


def _trace_products(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """sum_i tr(x_ij y_il) for stacks (k, 3, 2, 2)."""
    yt = y.swapaxes(-1, -2)
    return np.array([[_dot(x[:, j], yt[:, m]) for m in range(3)] for j in range(3)])


def _dot(x: np.ndarray, y: np.ndarray) -> float:
    """sum(x * y) without BLAS: OpenBLAS threads on long dot products stall for 100 ms when
    the two cores are busy (measured: 0.04 ms -> 100 ms per gradient); a ufunc does not."""
    return float(np.multiply(x, y).sum())


def _logdet_s_hessian(s: np.ndarray, h: np.ndarray, he: np.ndarray) -> np.ndarray:
    """d^2 log|S| / dpsi_j dpsi_l with S = sum H_i (the REML term).

    dS/dpsi_j = -sum H E_j H =: -S_j, so the second derivative is
    -tr(S^-1 S_l S^-1 S_j) + t_jl + t_lj with t_jl = sum tr(H S^-1 H E_j H E_l).
    """
    inv_s = np.linalg.inv(s)
    ps = inv_s @ (he @ h[:, None]).sum(0)  # S^-1 S_j
    t = _trace_products((h @ inv_s @ h)[:, None] @ BASIS, he)
    return -np.einsum("jab,lba->jl", ps, ps) + t + t.T


def _newton_polish(p, sums, steps: int, *, profile, hessian, gradient) -> tuple[object, bool]:
    """Newton steps in Psi on the profiled deviance, from an L-BFGS-B solution.

    Its Hessian is the Schur complement of the beta block in ``hessian`` (the observed
    Hessian of the log-likelihood in (beta, psi)); a step is taken only if Psi stays
    positive definite and the deviance does not rise, so on the boundary (singular Psi)
    the L-BFGS-B solution stands. Converged = a step below 1e-9. Shared with
    ``models.fast_mixed`` (any fixed part), whose profile has the same fields.
    """
    k = p.beta.size
    for _ in range(steps):
        hess = -2 * hessian(p, sums)
        hess_psi = hess[k:, k:] - hess[k:, :k] @ np.linalg.solve(hess[:k, :k], hess[:k, k:])
        grad = gradient(p, sums)
        try:
            step = -np.linalg.solve(hess_psi, [grad[0, 0], 2 * grad[1, 0], grad[1, 1]])
        except np.linalg.LinAlgError:
            return p, False
        psi = p.psi + np.einsum("j,jab->ab", step, BASIS)
        if np.any(np.linalg.eigvalsh(psi) <= 0) or np.any(np.linalg.eigvalsh(hess_psi) <= 0):
            return p, False
        new = profile(psi, sums)
        if new.deviance > p.deviance + 1e-12 * abs(p.deviance):
            return p, False
        p = new
        if np.max(np.abs(step)) <= 1e-9 * (1 + np.max(np.abs(psi))):
            return p, True
    return p, False


def minimise_deviance(
    sums, start: np.ndarray, *, objective, profile, hessian, gradient, newton_steps: int
):
    """L-BFGS-B on the Cholesky factor of Psi (diagonal >= 0, as lme4), then Newton steps.

    Returns the profile at the optimum and whether either method converged.
    """
    result = optimize.minimize(
        objective,
        start,
        args=(sums,),
        jac=True,
        method="L-BFGS-B",
        bounds=[(0, None), (None, None), (0, None)],
        options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 1000},
    )
    polish = {"profile": profile, "hessian": hessian, "gradient": gradient}
    p, polished = _newton_polish(profile(_psi_of(result.x), sums), sums, newton_steps, **polish)
    return p, polished or bool(result.success)


def optimise(sums: PatientSums) -> tuple[Profile, bool]:
    """The REML/ML optimum of the primary model."""
    return minimise_deviance(
        sums,
        starting_theta(sums),
        objective=_objective,
        profile=profile,
        hessian=loglike_hessian,
        gradient=psi_gradient,
        newton_steps=6,
    )


def tidy_fixed(terms: list[str], estimate, std_error) -> pl.DataFrame:
    """Wald z, two-sided normal p and 95% CI, as ``models.lmm.tidy_fixed_effects``."""
    z = stats.norm.ppf(0.975)
    estimate, std_error = np.asarray(estimate), np.asarray(std_error)
    return pl.DataFrame(
        {
            "term": terms,
            "estimate": estimate,
            "std_error": std_error,
            "z": estimate / std_error,
            "p_value": 2 * stats.norm.sf(np.abs(estimate / std_error)),
            "ci_low": estimate - z * std_error,
            "ci_high": estimate + z * std_error,
        }
    )


def fit_growth_model_fast(
    data: pd.DataFrame,
    *,
    outcome: str,
    time: str,
    group: str,
    reml: bool = True,
    time_scale: float = 1.0,
    fixed: str | None = None,
) -> GrowthModelFit:
    """``fit_growth_model`` for ``outcome ~ time`` only, without statsmodels' row loops.

    Same arguments, same tables: time is divided by ``time_scale`` for the fit (so the
    log-likelihood is that of the scaled fit, as statsmodels reports it) and the slope,
    its SE and the slope (co)variances are transformed back to ``time`` units.
    """
    if fixed not in (None, time):
        raise ValueError(f"the fast engine fits '{outcome} ~ {time}' only, not '{fixed}'")
    sums = patient_sums(data, outcome, time, group, time_scale, reml)
    p, converged = optimise(sums)
    back = np.array([1.0, 1.0 / time_scale])
    se = np.sqrt(np.diag(np.linalg.inv(-loglike_hessian(p, sums)))[:2]) * back
    sigma2 = p.q / sums.df
    g = sigma2 * p.psi
    components = [g[0, 0], g[1, 1] / time_scale**2, g[0, 1] / time_scale, sigma2]
    return GrowthModelFit(
        fixed_effects=tidy_fixed(["Intercept", time], (p.beta + [sums.y_shift, 0]) * back, se),
        variance_components=pl.DataFrame(
            {
                "component": ["intercept_var", "slope_var", "intercept_slope_cov", "residual_var"],
                "estimate": components,
            }
        ),
        n_observations=sums.n_observations,
        n_groups=len(sums.yty),
        log_likelihood=-0.5 * p.deviance,
        converged=converged,
    )

"""The likelihood when the fixed part is the random part, ``X_i = Z_i = [1, t]`` (the
primary model): every term from the six sums per patient of ``models.mixed.sums``.

For ``y_i = X_i beta + Z_i b_i + e_i``, ``b_i ~ N(0, G)``, ``e_i ~ N(0, sigma^2 I)``,
write ``V_i = sigma^2 W_i`` with ``W_i = I + Z_i Psi Z_i'`` and ``Psi = G / sigma^2``.
The Woodbury identity (Henderson & Searle 1981, SIAM Review 23:53; push-through form,
valid for singular Psi)

    W_i^{-1} = I - Z_i (I + Psi A_i)^{-1} Psi Z_i',    A_i = Z_i'Z_i,

and Sylvester's determinant identity ``|W_i| = |I + Psi A_i|`` give

    X_i'W_i^{-1}X_i = (I + A_i Psi)^{-1} A_i,   X_i'W_i^{-1}y_i = (I + A_i Psi)^{-1} c_i,
    y_i'W_i^{-1}y_i = y_i'y_i - c_i' Psi (I + A_i Psi)^{-1} c_i,

with ``c_i = Z_i'y_i``. beta (GLS) and sigma^2 are profiled out as in lme4 (Bates et al.
2015, JSS 67(1), eq. 41) and statsmodels. ``models.mixed.design`` computes the same
likelihood for any fixed part (to 1e-13 on this one, tests) with more operations; this
one is kept for the primary model because it is that model's published numbers to the
last bit, and faster.
"""

from __future__ import annotations

import numpy as np

from models.mixed.likelihood import BASIS, Likelihood, Profile, dot
from models.mixed.sums import DesignSums, symmetric


def packed(matrix: np.ndarray) -> np.ndarray:
    """A symmetric 2x2 matrix -> its entries (00, 01, 11)."""
    return np.array([matrix[0, 0], matrix[0, 1], matrix[1, 1]])


def stacked(entries: np.ndarray) -> np.ndarray:
    """(3, k) symmetric entries -> (k, 2, 2) matrices."""
    return np.moveaxis(symmetric(entries), -1, 0)


def profile(psi: np.ndarray, sums: DesignSums) -> Profile:
    """The profiled -2 log-likelihood at ``psi``, from the Woodbury identities above.

    B_i = I + A_i Psi is inverted by its adjugate; |W_i| = |B_i| (Sylvester).
    """
    (a0, a1, a2), (c0, c1), (p0, p1, p2) = sums.ztz, sums.zty, packed(psi)
    b00, b01 = 1 + a0 * p0 + a1 * p1, a0 * p1 + a1 * p2
    b10, b11 = a1 * p0 + a2 * p1, 1 + a1 * p1 + a2 * p2
    det = b00 * b11 - b01 * b10
    h = np.array([b11 * a0 - b01 * a1, b11 * a1 - b01 * a2, b00 * a2 - b10 * a1]) / det
    u = np.array([b11 * c0 - b01 * c1, b00 * c1 - b10 * c0]) / det
    ywy = sums.yty.sum() - (c0 * (p0 * u[0] + p1 * u[1]) + c1 * (p1 * u[0] + p2 * u[1])).sum()
    s = symmetric(h.sum(1))
    beta = np.linalg.solve(s, u.sum(1))
    q = float(ywy - u.sum(1) @ beta)
    v = u - np.array([h[0] * beta[0] + h[1] * beta[1], h[1] * beta[0] + h[2] * beta[1]])
    m = sums.df
    dev = np.log(det).sum() + m * np.log(2 * np.pi * q / m) + m
    if sums.reml:
        dev += np.linalg.slogdet(s)[1]
    return Profile(psi, h, v, s, beta, q, float(dev))


def psi_gradient(p: Profile, sums: DesignSums) -> np.ndarray:
    """d deviance / dPsi as a symmetric 2x2 matrix D, i.e. d deviance = tr(D dPsi).

    d log|W_i| = tr(H_i dPsi), d log|S| = -tr(sum H_i S^{-1} H_i dPsi) and, beta being at
    its GLS optimum (envelope), d q = -sum v_i' dPsi v_i (H_i = Z_i'W_i^{-1}Z_i).
    """
    v0, v1 = p.v
    vv = np.array([dot(v0, v0), dot(v0, v1), dot(v1, v1)])
    grad = packed(p.s) - (sums.df / p.q) * vv
    if sums.reml:  # sum H_i S^{-1} H_i, entry by entry, from sums of products of H_i entries
        h0, h1, h2 = p.h
        i0, i1, i2 = packed(np.linalg.inv(p.s))
        pairs = [(h0, h0), (h0, h1), (h1, h1), (h0, h2), (h1, h2), (h2, h2)]
        g00, g01, g11, g02, g12, g22 = (dot(x, y) for x, y in pairs)
        grad -= np.array(
            [
                i0 * g00 + 2 * i1 * g01 + i2 * g11,
                i0 * g01 + i1 * (g02 + g11) + i2 * g12,
                i0 * g11 + 2 * i1 * g12 + i2 * g22,
            ]
        )
    return symmetric(grad)


def loglike_hessian(p: Profile, sums: DesignSums) -> np.ndarray:
    """Observed Hessian of statsmodels' sigma-profiled log-likelihood in (beta, psi).

    The order (beta_0, beta_1, psi_11, psi_21, psi_22) and the parametrisation (Psi itself,
    not its square root) are those of ``MixedLM.hessian``, whose inverse gives ``bse_fe``;
    the beta-Psi block is not zero on unbalanced data, so it must be kept to match.
    Uses dH_i = -H_i dPsi H_i and dv_i = -H_i dPsi v_i (E_j = dPsi / dpsi_j).
    """
    m, q, h, v = sums.df, p.q, stacked(p.h), p.v.T
    he = h[:, None] @ BASIS  # (k, 3, 2, 2): H_i E_j
    ev = (BASIS @ v[:, None, :, None])[..., 0]  # (k, 3, 2): E_j v_i
    hev = (h[:, None] @ ev[..., None])[..., 0]  # H_i E_j v_i
    dq = -np.array([dot(ev[:, j], v) for j in range(3)])
    d2q = 2 * np.array([[dot(ev[:, j], hev[:, m]) for m in range(3)] for j in range(3)])
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
    return np.array([[dot(x[:, j], yt[:, m]) for m in range(3)] for j in range(3)])


def _logdet_s_hessian(s: np.ndarray, h: np.ndarray, he: np.ndarray) -> np.ndarray:
    """d^2 log|S| / dpsi_j dpsi_l with S = sum H_i (the REML term).

    dS/dpsi_j = -sum H E_j H =: -S_j, so the second derivative is
    -tr(S^-1 S_l S^-1 S_j) + t_jl + t_lj with t_jl = sum tr(H S^-1 H E_j H E_l).
    """
    inv_s = np.linalg.inv(s)
    ps = inv_s @ (he @ h[:, None]).sum(0)  # S^-1 S_j
    t = _trace_products((h @ inv_s @ h)[:, None] @ BASIS, he)
    return -np.einsum("jab,lba->jl", ps, ps) + t + t.T


LINE = Likelihood(profile, psi_gradient, loglike_hessian, newton_steps=6)

"""The likelihood for any fixed part ``X_i`` (p columns) with the random part ``Z_i = [1, t]``.

Why: the secondary models (``nprs ~ month * depressed`` and its ML fits for the LRT) have
fixed effects beyond the line. With ``Psi = G / sigma^2`` and ``N_i = (I + A_i Psi)^{-1}``,
``A_i = Z_i'Z_i``, the Woodbury identity (``models.mixed.line``) gives, per patient,

    Z'W^{-1}Z = N A =: H,   Z'W^{-1}X = N C =: F,   Z'W^{-1}y = N c =: g,
    X'W^{-1}X = X'X - C' Psi F,   X'W^{-1}y = X'y - C' Psi g,   y'W^{-1}y = y'y - c' Psi g,

with ``C_i = Z_i'X_i`` (2 x p) and ``c_i = Z_i'y_i``, and ``|W_i| = |I + A_i Psi|``
(Sylvester). X'X, X'y and y'y are only needed summed over patients. The likelihood, its
gradient in Psi and the observed Hessian in (beta, Psi) are those of ``models.mixed.line``
with ``H`` replaced by ``F`` wherever X enters (statsmodels' definitions, so statsmodels
stays the reference: tests compare).
"""

from __future__ import annotations

import numpy as np

from models.mixed.likelihood import BASIS, Likelihood, Profile
from models.mixed.sums import DesignSums, FixedSums


def _fixed(sums: DesignSums) -> FixedSums:
    if sums.fixed is None:
        raise ValueError("these sums have no fixed part of their own: use models.mixed.line")
    return sums.fixed


def profile(psi: np.ndarray, sums: DesignSums) -> Profile:
    """The profiled -2 log-likelihood at ``psi``: B_i = I + A_i Psi is inverted by its
    adjugate and |W_i| = |B_i| (Sylvester)."""
    fixed = _fixed(sums)
    (a0, a1, a2), (y0, y1) = sums.ztz, sums.zty
    c0, c1 = fixed.ztx[:, 0], fixed.ztx[:, 1]
    p0, p1, p2 = psi[0, 0], psi[0, 1], psi[1, 1]
    b00, b01 = 1 + a0 * p0 + a1 * p1, a0 * p1 + a1 * p2
    b10, b11 = a1 * p0 + a2 * p1, 1 + a1 * p1 + a2 * p2
    det = b00 * b11 - b01 * b10
    n00, n01, n10, n11 = b11 / det, -b01 / det, -b10 / det, b00 / det
    h = np.array([n00 * a0 + n01 * a1, n00 * a1 + n01 * a2, n10 * a1 + n11 * a2])
    f0 = n00[:, None] * c0 + n01[:, None] * c1
    f1 = n10[:, None] * c0 + n11[:, None] * c1
    g0, g1 = n00 * y0 + n01 * y1, n10 * y0 + n11 * y1
    pf0, pf1 = p0 * f0 + p1 * f1, p1 * f0 + p2 * f1
    pg0, pg1 = p0 * g0 + p1 * g1, p1 * g0 + p2 * g1
    s = fixed.xtx - _cross(c0, pf0) - _cross(c1, pf1)
    u = fixed.xty - _cross(c0, pg0[:, None])[:, 0] - _cross(c1, pg1[:, None])[:, 0]
    ywy = sums.yty.sum() - float(np.multiply(y0, pg0).sum() + np.multiply(y1, pg1).sum())
    beta = np.linalg.solve(s, u)
    q = float(ywy - u @ beta)
    v = np.array([g0 - _times(f0, beta), g1 - _times(f1, beta)])
    m = sums.df
    dev = np.log(det).sum() + m * np.log(2 * np.pi * q / m) + m
    if sums.reml:
        dev += np.linalg.slogdet(s)[1]
    return Profile(psi, h, v, s, beta, q, float(dev), f=np.array([f0, f1]))


def _cross(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """x'y for (k, p) and (k, r) arrays, without BLAS (likelihood.dot says why)."""
    return np.einsum("ki,kj->ij", x, y)


def _times(x: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """x beta for a (k, p) array, column by column (no BLAS)."""
    return sum(x[:, i] * b for i, b in enumerate(beta))


def _f(p: Profile) -> np.ndarray:
    if p.f is None:
        raise ValueError("a profile of the line likelihood has no F: use models.mixed.line")
    return p.f


def psi_gradient(p: Profile, sums: DesignSums) -> np.ndarray:
    """d deviance / dPsi as a symmetric 2x2 matrix D (d deviance = tr(D dPsi)).

    d log|W_i| = tr(H_i dPsi); d q = -sum v_i' dPsi v_i (beta at its GLS optimum);
    d log|S| = -tr(sum F_i S^{-1} F_i' dPsi).
    """
    (h0, h1, h2), (v0, v1) = p.h, p.v
    grad = np.array([[h0.sum(), h1.sum()], [h1.sum(), h2.sum()]])
    vv01 = np.multiply(v0, v1).sum()
    grad -= (sums.df / p.q) * np.array(
        [[np.multiply(v0, v0).sum(), vv01], [vv01, np.multiply(v1, v1).sum()]]
    )
    if sums.reml:
        f0, f1 = _f(p)
        inv_s = np.linalg.inv(p.s)
        fs0, fs1 = (np.einsum("ki,ij->kj", f, inv_s) for f in (f0, f1))
        off = np.multiply(fs0, f1).sum()
        grad -= np.array([[np.multiply(fs0, f0).sum(), off], [off, np.multiply(fs1, f1).sum()]])
    return grad


def stacked(p: Profile) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """H (k, 2, 2), F (k, 2, p) and v (k, 2), for the Hessian."""
    h0, h1, h2 = p.h
    h = np.stack([np.stack([h0, h1], -1), np.stack([h1, h2], -1)], 1)
    return h, np.stack(list(_f(p)), 1), np.stack(list(p.v), -1)


def loglike_hessian(p: Profile, sums: DesignSums) -> np.ndarray:
    """Observed Hessian of statsmodels' sigma-profiled log-likelihood in (beta, psi),
    in statsmodels' order (beta..., psi_11, psi_21, psi_22): its inverse gives bse_fe.

    Uses dH = -H E H, dF = -H E F, dv = -H E v (E_j = dPsi / dpsi_j).
    """
    m, q = sums.df, p.q
    h, f, v = stacked(p)
    k_fe = f.shape[2]
    ev = np.einsum("jab,kb->kja", BASIS, v)  # E_j v_i
    hev = np.einsum("kab,kjb->kja", h, ev)  # H_i E_j v_i
    he = np.einsum("kab,jbc->kjac", h, BASIS)  # H_i E_j
    dq = -np.einsum("kja,ka->j", ev, v)
    d2q = 2 * np.einsum("kja,kla->jl", ev, hev)
    d2 = -np.einsum("kjab,klba->jl", he, he) + m * (d2q / q - np.outer(dq, dq) / q**2)
    if sums.reml:
        d2 += _logdet_s_hessian(p.s, h, f)
    hess = np.zeros((k_fe + 3, k_fe + 3))
    hess[:k_fe, :k_fe] = -(m / q) * p.s
    hess[:k_fe, k_fe:] = -(m / q) * np.einsum("kai,kja->ij", f, ev)
    hess[k_fe:, :k_fe] = hess[:k_fe, k_fe:].T
    hess[k_fe:, k_fe:] = -0.5 * d2
    return hess


def _logdet_s_hessian(s: np.ndarray, h: np.ndarray, f: np.ndarray) -> np.ndarray:
    """d^2 log|S| / dpsi_j dpsi_l with S = sum X'W^{-1}X (the REML term)."""
    inv_s = np.linalg.inv(s)
    ef = np.einsum("jab,kbi->kjai", BASIS, f)  # E_j F_i
    s_j = np.einsum("kai,kjab->jib", f, ef)  # sum F' E_j F, (3, p, p)
    ps = inv_s @ s_j
    fsf = np.einsum("kai,ij,kbj->kab", f, inv_s, f)  # F S^-1 F'
    t = np.einsum("kab,jbc,kcd,lda->jl", fsf, BASIS, h, BASIS, optimize=True)
    return -np.einsum("jab,lba->jl", ps, ps) + t + t.T


DESIGN = Likelihood(profile, psi_gradient, loglike_hessian, newton_steps=20)

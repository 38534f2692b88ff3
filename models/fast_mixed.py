"""Random intercept and slope models with any fixed part, fitted from per-patient sums.

Why: the secondary mixed models (``nprs ~ month * depressed`` and its ML fits for the
LRT) ran in statsmodels MixedLM, whose likelihood loops over patients in Python: 3
minutes at 19,000 patients, hours at a registry's million. ``models.fast_lmm`` fits the
primary model (fixed part ``[1, t]``, equal to the random part) from six sums per
patient; this module extends it to a fixed design ``X_i`` of p columns (any patsy
formula) with the same random part ``Z_i = [1, t]``.

With ``Psi = G / sigma^2`` and ``N_i = (I + A_i Psi)^{-1}``, ``A_i = Z_i'Z_i``, the
Woodbury identity gives, per patient,

    Z'W^{-1}Z = N A =: H,   Z'W^{-1}X = N C =: F,   Z'W^{-1}y = N c =: g,
    X'W^{-1}X = X'X - C' Psi F,   X'W^{-1}y = X'y - C' Psi g,   y'W^{-1}y = y'y - c' Psi g,

with ``C_i = Z_i'X_i`` (2 x p) and ``c_i = Z_i'y_i``, and ``|W_i| = |I + A_i Psi|``
(Sylvester). X'X, X'y and y'y are only needed summed over patients. beta and sigma^2
are profiled out and the likelihood, its gradient in Psi and the observed Hessian in
(beta, Psi) are those of ``models.fast_lmm`` with ``H`` replaced by ``F`` wherever X
enters (statsmodels' definitions, so statsmodels stays the reference: tests compare).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import patsy
import polars as pl

from models.fast_lmm import BASIS, LOWER, PatientSums, minimise_deviance, tidy_fixed
from models.fast_lmm import starting_theta as line_starting_theta
from models.lmm import GrowthModelFit


@dataclass(frozen=True)
class DesignSums:
    """Per-patient sums (stacked over the k patients) and the sums over all rows."""

    a: np.ndarray  # (k, 2, 2) Z_i'Z_i
    c: np.ndarray  # (k, 2, p) Z_i'X_i
    cy: np.ndarray  # (k, 2) Z_i'y_i
    yty_i: np.ndarray  # (k,) y_i'y_i (for the starting values)
    xtx: np.ndarray  # (p, p) X'X
    xty: np.ndarray  # (p,) X'y
    y_shift: float  # mean of y, subtracted against cancellation (shifts the intercept)
    terms: list[str]
    n_observations: int
    reml: bool

    @property
    def df(self) -> int:
        """N - p under REML, N under ML: the power of sigma^2 in the likelihood."""
        return self.n_observations - (self.c.shape[2] if self.reml else 0)


def design_sums(data: pd.DataFrame, formula: str, time: str, group: str, reml: bool) -> DesignSums:
    """``outcome ~ fixed`` as patsy builds it for statsmodels, reduced to sums per group.

    ``data[time]`` must already be in the fitting scale; rows with a missing value in the
    formula's columns are dropped (patsy's default, as statsmodels).
    """
    data = data.reset_index(drop=True)  # patsy keeps the index of the rows it keeps
    y_frame, x_frame = patsy.dmatrices(formula, data, return_type="dataframe")
    if "Intercept" not in x_frame.columns:
        raise ValueError(f"the fast engine needs an intercept in {formula!r}")
    codes, _ = pd.factorize(data.loc[x_frame.index, group], sort=False)
    y = y_frame.to_numpy(dtype=float)[:, 0]
    x = x_frame.to_numpy(dtype=float)
    t = data.loc[x_frame.index, time].to_numpy(dtype=float)
    y_shift = float(y.mean())
    y = y - y_shift
    k = int(codes.max()) + 1
    z = np.column_stack([np.ones_like(t), t])

    def per_patient(weights: np.ndarray) -> np.ndarray:
        return np.bincount(codes, weights=weights, minlength=k)

    a = np.array([[per_patient(z[:, i] * z[:, j]) for j in range(2)] for i in range(2)])
    c = np.array([[per_patient(z[:, i] * x[:, j]) for j in range(x.shape[1])] for i in range(2)])
    cy = np.array([per_patient(z[:, i] * y) for i in range(2)])
    return DesignSums(
        a=np.moveaxis(a, -1, 0),
        c=np.moveaxis(c, -1, 0),
        cy=cy.T,
        yty_i=per_patient(y * y),
        xtx=x.T @ x,
        xty=x.T @ y,
        y_shift=y_shift,
        terms=list(x_frame.columns),
        n_observations=len(y),
        reml=reml,
    )


@dataclass
class Profile:
    """The beta- and sigma-profiled likelihood at one Psi, with what derivatives need.

    Per-patient 2x2 and 2xp matrices are kept by their entries and rows (arrays over
    patients): numpy multiplies stacks of tiny matrices slowly, elementwise passes fast.
    """

    psi: np.ndarray  # (2, 2)
    h: tuple[np.ndarray, np.ndarray, np.ndarray]  # Z'W^{-1}Z entries 00, 01, 11, each (k,)
    f: tuple[np.ndarray, np.ndarray]  # rows of Z'W^{-1}X, each (k, p)
    v: tuple[np.ndarray, np.ndarray]  # Z'W^{-1}(y - X beta), each (k,)
    s: np.ndarray  # (p, p) X'W^{-1}X summed
    beta: np.ndarray  # (p,) GLS estimate (of the shifted outcome)
    q: float  # sum of r'W^{-1}r
    deviance: float  # -2 log-likelihood, statsmodels' constants

    def stacked(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """H (k, 2, 2), F (k, 2, p) and v (k, 2), for the Hessian."""
        h0, h1, h2 = self.h
        h = np.stack([np.stack([h0, h1], -1), np.stack([h1, h2], -1)], 1)
        return h, np.stack(self.f, 1), np.stack(self.v, -1)


def profile(psi: np.ndarray, sums: DesignSums) -> Profile:
    """The profiled -2 log-likelihood at ``psi``: B_i = I + A_i Psi is inverted by its
    adjugate and |W_i| = |B_i| (Sylvester)."""
    a0, a1, a2 = sums.a[:, 0, 0], sums.a[:, 0, 1], sums.a[:, 1, 1]
    c0, c1 = sums.c[:, 0], sums.c[:, 1]
    y0, y1 = sums.cy[:, 0], sums.cy[:, 1]
    p0, p1, p2 = psi[0, 0], psi[0, 1], psi[1, 1]
    b00, b01 = 1 + a0 * p0 + a1 * p1, a0 * p1 + a1 * p2
    b10, b11 = a1 * p0 + a2 * p1, 1 + a1 * p1 + a2 * p2
    det = b00 * b11 - b01 * b10
    n00, n01, n10, n11 = b11 / det, -b01 / det, -b10 / det, b00 / det
    h = (n00 * a0 + n01 * a1, n00 * a1 + n01 * a2, n10 * a1 + n11 * a2)
    f0 = n00[:, None] * c0 + n01[:, None] * c1
    f1 = n10[:, None] * c0 + n11[:, None] * c1
    g0, g1 = n00 * y0 + n01 * y1, n10 * y0 + n11 * y1
    pf0, pf1 = p0 * f0 + p1 * f1, p1 * f0 + p2 * f1
    pg0, pg1 = p0 * g0 + p1 * g1, p1 * g0 + p2 * g1
    s = sums.xtx - _cross(c0, pf0) - _cross(c1, pf1)
    u = sums.xty - _cross(c0, pg0[:, None])[:, 0] - _cross(c1, pg1[:, None])[:, 0]
    ywy = sums.yty_i.sum() - float(np.multiply(y0, pg0).sum() + np.multiply(y1, pg1).sum())
    beta = np.linalg.solve(s, u)
    q = float(ywy - u @ beta)
    v = (g0 - _times(f0, beta), g1 - _times(f1, beta))
    m = sums.df
    dev = np.log(det).sum() + m * np.log(2 * np.pi * q / m) + m
    if sums.reml:
        dev += np.linalg.slogdet(s)[1]
    return Profile(psi, h, (f0, f1), v, s, beta, q, float(dev))


def _cross(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """x'y for (k, p) and (k, r) arrays, without BLAS (fast_lmm._dot says why)."""
    return np.einsum("ki,kj->ij", x, y)


def _times(x: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """x beta for a (k, p) array, column by column (no BLAS)."""
    return sum(x[:, i] * b for i, b in enumerate(beta))


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
        f0, f1 = p.f
        inv_s = np.linalg.inv(p.s)
        fs0, fs1 = (np.einsum("ki,ij->kj", f, inv_s) for f in (f0, f1))
        off = np.multiply(fs0, f1).sum()
        grad -= np.array([[np.multiply(fs0, f0).sum(), off], [off, np.multiply(fs1, f1).sum()]])
    return grad


def _objective(theta: np.ndarray, sums: DesignSums) -> tuple[float, np.ndarray]:
    """Deviance per observation and its gradient in the Cholesky factor of Psi."""
    chol = np.zeros((2, 2))
    chol[LOWER] = theta
    p = profile(chol @ chol.T, sums)
    grad = 2 * psi_gradient(p, sums) @ chol
    return p.deviance / sums.n_observations, grad[LOWER] / sums.n_observations


def loglike_hessian(p: Profile, sums: DesignSums) -> np.ndarray:
    """Observed Hessian of statsmodels' sigma-profiled log-likelihood in (beta, psi),
    in statsmodels' order (beta..., psi_11, psi_21, psi_22): its inverse gives bse_fe.

    Uses dH = -H E H, dF = -H E F, dv = -H E v (E_j = dPsi / dpsi_j).
    """
    m, q = sums.df, p.q
    h, f, v = p.stacked()
    k_fe = f.shape[2]
    ev = np.einsum("jab,kb->kja", BASIS, v)  # E_j v_i
    hev = np.einsum("kab,kjb->kja", h, ev)  # H_i E_j v_i
    he = np.einsum("kab,jbc->kjac", h, BASIS)  # H_i E_j
    dq = -np.einsum("kja,ka->j", ev, v)
    d2q = 2 * np.einsum("kja,kla->jl", ev, hev)
    d2 = -np.einsum("kjab,klba->jl", he, he) + m * (d2q / q - np.outer(dq, dq) / q**2)
    if sums.reml:
        inv_s = np.linalg.inv(p.s)
        ef = np.einsum("jab,kbi->kjai", BASIS, f)  # E_j F_i
        s_j = np.einsum("kai,kjab->jib", f, ef)  # sum F' E_j F, (3, p, p)
        ps = inv_s @ s_j
        fsf = np.einsum("kai,ij,kbj->kab", f, inv_s, f)  # F S^-1 F'
        t = np.einsum("kab,jbc,kcd,lda->jl", fsf, BASIS, h, BASIS, optimize=True)
        d2 += -np.einsum("jab,lba->jl", ps, ps) + t + t.T
    hess = np.zeros((k_fe + 3, k_fe + 3))
    hess[:k_fe, :k_fe] = -(m / q) * p.s
    hess[:k_fe, k_fe:] = -(m / q) * np.einsum("kai,kja->ij", f, ev)
    hess[k_fe:, :k_fe] = hess[:k_fe, k_fe:].T
    hess[k_fe:, k_fe:] = -0.5 * d2
    return hess


def starting_theta(sums: DesignSums) -> np.ndarray:
    """``models.fast_lmm``'s moment estimate of Psi from per-patient OLS lines (the fixed
    part beyond the line only shifts those lines: a start, not an estimate)."""
    a = sums.a
    lines = PatientSums(
        np.array([a[:, 0, 0], a[:, 0, 1], a[:, 1, 1]]), sums.cy.T, sums.yty_i, 0.0, 0, False
    )
    return line_starting_theta(lines)


def optimise(sums: DesignSums) -> tuple[Profile, bool]:
    """The REML/ML optimum, as ``models.fast_lmm`` finds it (more Newton steps: from
    L-BFGS-B, whose line search may stop early here, they take up to about 8)."""
    return minimise_deviance(
        sums,
        starting_theta(sums),
        objective=_objective,
        profile=profile,
        hessian=loglike_hessian,
        gradient=psi_gradient,
        newton_steps=20,
    )


def fit_mixed_fast(
    data: pd.DataFrame,
    *,
    outcome: str,
    time: str,
    group: str,
    reml: bool = True,
    time_scale: float = 1.0,
    fixed: str | None = None,
) -> GrowthModelFit:
    """``models.lmm.fit_growth_model`` (same arguments, same tables) from per-patient sums.

    Time is divided by ``time_scale`` for the fit (the log-likelihood is that of the
    scaled fit, as statsmodels reports it); every term containing time, its SE, and the
    slope (co)variances are transformed back to ``time`` units.
    """
    scaled = data.assign(**{time: data[time] / time_scale})
    sums = design_sums(scaled, f"{outcome} ~ {fixed or time}", time, group, reml)
    p, converged = optimise(sums)
    k_fe = p.beta.size
    back = np.array([time_scale ** -term.split(":").count(time) for term in sums.terms])
    se = np.sqrt(np.diag(np.linalg.inv(-loglike_hessian(p, sums)))[:k_fe]) * back
    beta = p.beta + np.where(np.array(sums.terms) == "Intercept", sums.y_shift, 0.0)
    sigma2 = p.q / sums.df
    g = sigma2 * p.psi
    return GrowthModelFit(
        fixed_effects=tidy_fixed(sums.terms, beta * back, se),
        variance_components=pl.DataFrame(
            {
                "component": ["intercept_var", "slope_var", "intercept_slope_cov", "residual_var"],
                "estimate": [g[0, 0], g[1, 1] / time_scale**2, g[0, 1] / time_scale, sigma2],
            }
        ),
        n_observations=sums.n_observations,
        n_groups=sums.a.shape[0],
        log_likelihood=-0.5 * p.deviance,
        converged=converged,
    )

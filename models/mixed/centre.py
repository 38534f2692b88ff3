"""The three-level model (centre / patient / month) fitted from per-patient sums.

Why: statsmodels MixedLM cannot nest an unstructured patient intercept and slope in
centre (its variance components are independent scalars), and with independent ones it
takes 2 minutes at 19,000 patients, hours at a registry's million.

Model (lme4: ``y ~ t + (1 | centre) + (t | centre:patient)``): ``y = X beta + u_c +
a_i + b_i t + e`` with ``u_c ~ N(0, t sigma^2)`` and ``(a_i, b_i) ~ N(0, Psi sigma^2)``,
Psi unstructured (2x2, the primary model's), and ``X = Z = [1, t]``. Within a patient,
``W_i = I + Z_i Psi Z_i'`` and the Woodbury identities of ``models.mixed.line`` give
``H_i = Z'W_i^{-1}Z`` and ``g_i = Z'W_i^{-1}y`` from six sums per patient. A centre adds
``t 1 1'`` to the block of its patients; with ``1 = Z e_1``, a second Woodbury step
(Sherman-Morrison, ``w_c = t / (1 + t s_c)``, ``s_c = sum_i H_i[0, 0]``) gives

    X'V_c^{-1}X = sum_i H_i - w_c h_c h_c',   X'V_c^{-1}y = sum_i g_i - w_c h_c r_c,
    y'V_c^{-1}y = sum_i y'W_i^{-1}y - w_c r_c^2,   |V_c| = prod_i |W_i| (1 + t s_c),

with ``h_c = sum_i H_i e_1`` and ``r_c = sum_i g_i[0]`` (sums over the centre's
patients). beta and sigma^2 are profiled out as in lme4 and statsmodels; the four
variance parameters (lme4's theta: sqrt(t) and the Cholesky factor of Psi) are found by
L-BFGS-B (gradient by central differences). SEs, Satterthwaite df and the singular flag
are lme4's and lmerTest's (``models.mixed.inference``): a centre variance at 0 is flagged
and, the variances being held at their estimates, never enters the SEs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize

from models.mixed.inference import at_boundary, deviance_at_sigma, satterthwaite_df
from models.mixed.optimise import psi_of
from models.mixed.sums import DesignSums, line_sums, starting_theta
from models.mixed.tables import (
    CENTRE_COMPONENTS,
    GrowthModelFit,
    reml_time_offset,
    variance_table,
    wald_table,
)

FAST_CENTRE_ENGINE = (
    "cohortflow fast engine (models.mixed.centre: per-patient sums with a nested Woodbury "
    "step per centre, L-BFGS-B; checked against lme4, tests/data)"
)


@dataclass(frozen=True)
class CentreSums:
    patients: DesignSums  # per patient, time already scaled
    centre: np.ndarray  # (k,) centre code of each patient
    n_centres: int


def centre_sums(
    data: pd.DataFrame, *, outcome: str, time: str, group: str, cluster: str, reml: bool
) -> CentreSums:
    """Per-patient sums, and each patient's centre (a patient belongs to one centre)."""
    frame = data[[outcome, time, group, cluster]].dropna()
    centres_per_patient = frame.groupby(group, sort=False)[cluster].nunique()
    if (centres_per_patient > 1).any():
        raise ValueError("a patient's rows come from more than one centre")
    sums = line_sums(frame, outcome=outcome, time=time, group=group, reml=reml, time_scale=1.0)
    codes, _ = pd.factorize(frame[group], sort=False)  # line_sums' order
    first = np.unique(codes, return_index=True)[1]
    centre, names = pd.factorize(frame[cluster].to_numpy()[first], sort=False)
    return CentreSums(sums, centre, len(names))


@dataclass
class CentreProfile:
    beta: np.ndarray  # (2,) GLS estimate of the centred outcome
    s: np.ndarray  # (2, 2) X'V^{-1}X (sigma^2 units)
    q: float  # min over beta of (y - X beta)'V^{-1}(y - X beta)
    logdet: float  # sum log |V_c / sigma^2|
    deviance: float  # -2 log-likelihood, statsmodels' constants


def profile(t: float, psi: np.ndarray, sums: CentreSums) -> CentreProfile:
    """The beta- and sigma-profiled likelihood at the relative centre variance ``t`` and
    the relative patient covariance ``psi`` (2x2)."""
    p = sums.patients
    (a0, a1, a2), (c0, c1) = p.ztz, p.zty
    p0, p1, p2 = psi[0, 0], psi[0, 1], psi[1, 1]
    b00, b01 = 1 + a0 * p0 + a1 * p1, a0 * p1 + a1 * p2  # I + A_i Psi
    b10, b11 = a1 * p0 + a2 * p1, 1 + a1 * p1 + a2 * p2
    det = b00 * b11 - b01 * b10
    n00, n01, n10, n11 = b11 / det, -b01 / det, -b10 / det, b00 / det
    h00, h01, h11 = n00 * a0 + n01 * a1, n00 * a1 + n01 * a2, n10 * a1 + n11 * a2
    g0, g1 = n00 * c0 + n01 * c1, n10 * c0 + n11 * c1
    ywy = p.yty.sum() - float((c0 * (p0 * g0 + p1 * g1) + c1 * (p1 * g0 + p2 * g1)).sum())

    def per_centre(values: np.ndarray) -> np.ndarray:
        return np.bincount(sums.centre, weights=values, minlength=sums.n_centres)

    s_c, h_c1, r_c = per_centre(h00), per_centre(h01), per_centre(g0)
    w = t / (1 + t * s_c)
    s = np.array(
        [
            [h00.sum() - (w * s_c * s_c).sum(), h01.sum() - (w * s_c * h_c1).sum()],
            [h01.sum() - (w * s_c * h_c1).sum(), h11.sum() - (w * h_c1 * h_c1).sum()],
        ]
    )
    u = np.array([g0.sum() - (w * s_c * r_c).sum(), g1.sum() - (w * h_c1 * r_c).sum()])
    beta = np.linalg.solve(s, u)
    q = float(ywy - (w * r_c * r_c).sum() - u @ beta)
    logdet = float(np.log(det).sum() + np.log1p(t * s_c).sum())
    m = p.df
    deviance = logdet + m * np.log(2 * np.pi * q / m) + m
    if p.reml:
        deviance += np.linalg.slogdet(s)[1]
    return CentreProfile(beta, s, q, logdet, float(deviance))


def relative(theta: np.ndarray) -> tuple[float, np.ndarray]:
    """lme4's theta (sqrt(t), then the packed Cholesky factor of Psi) -> (t, Psi)."""
    return float(theta[0] ** 2), psi_of(theta[1:])


def optimise(sums: CentreSums) -> tuple[np.ndarray, CentreProfile, bool]:
    """theta at the optimum, by L-BFGS-B (relative SDs >= 0, as lme4), and its profile."""
    n = sums.patients.n_observations

    def objective(theta: np.ndarray) -> float:
        return profile(*relative(theta), sums).deviance / n

    start = np.concatenate([[0.3], starting_theta(sums.patients)])
    result = optimize.minimize(
        objective,
        start,
        jac="3-point",
        method="L-BFGS-B",
        bounds=[(0, None), (0, None), (None, None), (0, None)],
        options={"ftol": 1e-15, "gtol": 1e-9, "maxiter": 1000},
    )
    return result.x, profile(*relative(result.x), sums), bool(result.success)


def inference(theta: np.ndarray, best: CentreProfile, sums: CentreSums):
    """SEs (lme4's convention) and Satterthwaite df (lmerTest's) at the optimum."""
    m = sums.patients.df
    sigma = np.sqrt(best.q / m)
    se = np.sqrt(np.diag(np.linalg.inv(best.s))) * sigma

    def deviance(v: np.ndarray) -> float:
        p = profile(*relative(v[:4]), sums)
        return deviance_at_sigma(p.deviance, p.q, m, v[4])

    def covariance(v: np.ndarray) -> np.ndarray:
        return v[4] ** 2 * np.linalg.inv(profile(*relative(v[:4]), sums).s)

    return se, satterthwaite_df(np.append(theta, sigma), deviance, covariance)


def centre_boundary(theta: np.ndarray, time_scale: float) -> tuple[str, ...]:
    """lme4's isSingular: theta's diagonal (the slope's in time units) below 1e-4."""
    relative_sds = {
        "centre_intercept_var": theta[0],
        "patient_intercept_var": theta[1],
        "slope_var": theta[3] / time_scale,
    }
    return tuple(at_boundary(relative_sds))


def fit_three_level_fast(
    data: pd.DataFrame, *, outcome: str, time: str, group: str, cluster: str, time_scale: float
) -> GrowthModelFit:
    """REML fit of ``outcome ~ time`` with a ``cluster`` intercept and, per ``group``
    within it, an unstructured intercept and slope of ``time``.

    ``data[time]`` is already divided by ``time_scale`` (``models.mixed.engine`` says
    why); the slope, its SE, the slope (co)variances and the REML log-likelihood are
    transformed back to time units.
    """
    sums = centre_sums(data, outcome=outcome, time=time, group=group, cluster=cluster, reml=True)
    theta, best, converged = optimise(sums)
    se, df = inference(theta, best, sums)
    back = np.array([1.0, 1.0 / time_scale])
    beta = (best.beta + [sums.patients.y_shift, 0.0]) * back
    sigma2 = best.q / sums.patients.df
    t, psi = relative(theta)
    g = psi * sigma2
    values = [t * sigma2, g[0, 0], g[1, 1] / time_scale**2, g[0, 1] / time_scale, sigma2]
    boundary = centre_boundary(theta, time_scale)
    return GrowthModelFit(
        fixed_effects=wald_table(["Intercept", time], beta, se * back, df),
        variance_components=variance_table(
            dict(zip(CENTRE_COMPONENTS, values, strict=True)), boundary
        ),
        n_observations=sums.patients.n_observations,
        n_groups=sums.patients.n_patients,
        log_likelihood=-0.5 * best.deviance + reml_time_offset([time], time, time_scale, True),
        converged=converged,
        engine=FAST_CENTRE_ENGINE,
        singular=bool(boundary),
        boundary=boundary,
    )

"""The three-level model (centre / patient / month) fitted from per-patient sums.

Why: statsmodels MixedLM fits it with patients as variance components, one dummy column
per patient: 2 minutes at 19,000 patients, hours at a registry's million.

Model: ``y = X beta + u_c + a_i + b_i t + e``, with independent ``u_c ~ N(0, t sigma^2)``,
``a_i ~ N(0, psi_a sigma^2)``, ``b_i ~ N(0, psi_b sigma^2)`` and ``X = Z = [1, t]``.
Within a patient, ``W_i = I + Z_i Psi Z_i'`` with ``Psi = diag(psi_a, psi_b)``, and the
Woodbury identities of ``models.mixed.line`` give ``H_i = Z'W_i^{-1}Z`` and
``g_i = Z'W_i^{-1}y`` from six sums per patient. A centre adds ``t 1 1'`` to the block
of its patients; with ``1 = Z e_1``, a second Woodbury step (Sherman-Morrison,
``w_c = t / (1 + t s_c)``, ``s_c = sum_i H_i[0, 0]``) gives

    X'V_c^{-1}X = sum_i H_i - w_c h_c h_c',   X'V_c^{-1}y = sum_i g_i - w_c h_c r_c,
    y'V_c^{-1}y = sum_i y'W_i^{-1}y - w_c r_c^2,   |V_c| = prod_i |W_i| (1 + t s_c),

with ``h_c = sum_i H_i e_1`` and ``r_c = sum_i g_i[0]`` (sums over the centre's
patients). beta and sigma^2 are profiled out as in statsmodels; the three variance
parameters are found by L-BFGS-B (gradient by central differences), and the fixed
effects' SEs come from the observed Hessian of statsmodels' log-likelihood in
(beta, variances), by central differences: its beta block after inversion does not depend
on how the variances are parametrised, so it is statsmodels' ``bse_fe`` (tests compare).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize

from models.mixed.sums import DesignSums, line_sums
from models.mixed.tables import CENTRE_COMPONENTS, GrowthModelFit, variance_table, wald_table

FAST_CENTRE_ENGINE = (
    "cohortflow fast engine (models.mixed.centre: per-patient sums with a nested Woodbury "
    "step per centre, L-BFGS-B; equal to statsmodels MixedLM at its optimum, "
    "tests/models/mixed)"
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


def profile(variances: np.ndarray, sums: CentreSums) -> CentreProfile:
    """The beta- and sigma-profiled likelihood at (t, psi_a, psi_b)."""
    t, pa, pb = variances
    p = sums.patients
    (a0, a1, a2), (c0, c1) = p.ztz, p.zty
    b00, b01, b10, b11 = 1 + a0 * pa, a1 * pb, a1 * pa, 1 + a2 * pb  # I + A_i Psi
    det = b00 * b11 - b01 * b10
    n00, n01, n10, n11 = b11 / det, -b01 / det, -b10 / det, b00 / det
    h00, h01, h11 = n00 * a0 + n01 * a1, n00 * a1 + n01 * a2, n10 * a1 + n11 * a2
    g0, g1 = n00 * c0 + n01 * c1, n10 * c0 + n11 * c1
    ywy = p.yty.sum() - float((pa * c0 * g0 + pb * c1 * g1).sum())

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


def loglike(beta: np.ndarray, variances: np.ndarray, sums: CentreSums) -> float:
    """statsmodels' log-likelihood at (beta, variances), sigma^2 profiled out (beta not):
    the function whose Hessian gives ``bse_fe``."""
    p = profile(variances, sums)
    delta = beta - p.beta
    q = p.q + delta @ p.s @ delta
    m = sums.patients.df
    value = -0.5 * (p.logdet + m * np.log(2 * np.pi * q / m) + m)
    return value - 0.5 * np.linalg.slogdet(p.s)[1] if sums.patients.reml else value


def optimise(sums: CentreSums) -> tuple[np.ndarray, CentreProfile, bool]:
    """Variances (t, psi_a, psi_b) at the optimum, by L-BFGS-B on their square roots."""
    n = sums.patients.n_observations

    def objective(root: np.ndarray) -> float:
        return profile(root**2, sums).deviance / n

    start = np.array([0.1, 1.0, 1.0])
    result = optimize.minimize(
        objective,
        start,
        jac="3-point",
        method="L-BFGS-B",
        bounds=[(0, None)] * 3,
        options={"ftol": 1e-15, "gtol": 1e-9, "maxiter": 1000},
    )
    variances = result.x**2
    return variances, profile(variances, sums), bool(result.success)


def fixed_effect_se(beta: np.ndarray, variances: np.ndarray, sums: CentreSums) -> np.ndarray:
    """SEs of beta from the inverse observed Hessian of ``loglike`` in (beta, variances),
    by central differences."""
    x0 = np.concatenate([beta, variances])
    step = 1e-4 * np.maximum(np.abs(x0), 1e-2)

    def at(x: np.ndarray) -> float:
        return loglike(x[:2], x[2:], sums)

    k = x0.size
    hess = np.zeros((k, k))
    for i in range(k):
        for j in range(i, k):
            ei, ej = np.eye(k)[i] * step[i], np.eye(k)[j] * step[j]
            value = (at(x0 + ei + ej) - at(x0 + ei - ej) - at(x0 - ei + ej) + at(x0 - ei - ej)) / (
                4 * step[i] * step[j]
            )
            hess[i, j] = hess[j, i] = value
    return np.sqrt(np.diag(np.linalg.inv(-hess))[:2])


def fit_three_level_fast(
    data: pd.DataFrame, *, outcome: str, time: str, group: str, cluster: str, time_scale: float
) -> GrowthModelFit:
    """REML fit of ``outcome ~ time`` with a ``cluster`` intercept and, per ``group``
    within it, an intercept and a slope of ``time`` (independent).

    ``data[time]`` is already divided by ``time_scale`` (``models.mixed.engine`` says
    why); the slope, its SE and the slope variance are transformed back to time units.
    """
    sums = centre_sums(data, outcome=outcome, time=time, group=group, cluster=cluster, reml=True)
    variances, best, converged = optimise(sums)
    se = fixed_effect_se(best.beta, variances, sums)
    back = np.array([1.0, 1.0 / time_scale])
    beta = (best.beta + [sums.patients.y_shift, 0.0]) * back
    sigma2 = best.q / sums.patients.df
    t, psi_a, psi_b = variances * sigma2
    values = [t, psi_a, psi_b / time_scale**2, sigma2]
    return GrowthModelFit(
        fixed_effects=wald_table(["Intercept", time], beta, se * back),
        variance_components=variance_table(dict(zip(CENTRE_COMPONENTS, values, strict=True))),
        n_observations=sums.patients.n_observations,
        n_groups=sums.patients.n_patients,
        log_likelihood=-0.5 * best.deviance,
        converged=converged,
        engine=FAST_CENTRE_ENGINE,
    )

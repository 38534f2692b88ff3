"""Inference for the fixed effects as lme4 and lmerTest give it: SEs, Satterthwaite df, flags.

The SE convention is lme4's (``vcov.merMod``): ``sigma^2 (X'W^{-1}X)^{-1}`` at the REML
(or ML) estimate of the variance parameters, i.e. the inverse of the fixed-effects block
of the information, the variance parameters held at their estimates. The observed
Hessian in (beta, variances) that statsmodels inverts as a whole adds the beta-variance
cross terms: 0.1-0.3 % larger SEs on unbalanced data, and a boundary variance (a centre
variance at 0) distorts it. Held at their estimates, the variances never enter the SEs,
so a parameter on its boundary is left out by construction.

Degrees of freedom are lmerTest's Satterthwaite approximation (Kuznetsova et al. 2017,
JSS 82(13)): for a fixed effect with variance ``C_jj(varpar)``,

    df_j = 2 C_jj^2 / (g_j' A g_j),   g_j = dC_jj / dvarpar,   A = 2 H^{-1},

where ``varpar`` = (the relative Cholesky factor theta, sigma), ``H`` is the Hessian of
the deviance (REML or ML, profiled over beta only) in varpar, and derivatives are
numerical (numdifftools; lmerTest uses numDeriv). Any linear reparametrisation of theta
(time in years instead of months) leaves df unchanged.

Singular fits follow lme4's ``isSingular``: a diagonal element of theta (a relative
standard deviation) below 1e-4, theta expressed in the time unit the model is described in.
"""

from __future__ import annotations

from collections.abc import Callable

import numdifftools as nd
import numpy as np

SINGULAR_TOLERANCE = 1e-4  # lme4::isSingular's default
# Central differences with one fixed step: 43 deviance evaluations for four variance
# parameters, against 603 with numdifftools' default Richardson extrapolation, and df
# within 4e-7 of lmerTest's on the study's models (tests/models/mixed): at a million
# patients each evaluation is a few numpy passes, so this keeps df to seconds.
STEPS = {"method": "central", "step": 1e-4, "richardson_terms": 0}
SE_CONVENTION = (
    "lme4's: sigma^2 (X'V^-1 X)^-1 at the variance estimates (the fixed-effects block of "
    "the information, variance parameters held at their estimates); t tests with "
    "Satterthwaite degrees of freedom as lmerTest"
)


def deviance_at_sigma(profiled: float, q: float, m: int, sigma: float) -> float:
    """The deviance at residual SD ``sigma`` from its sigma-profiled value (lmerTest's
    ``devfun_vp``): ``m log(2 pi q / m) + m`` is replaced by ``m log(2 pi s^2) + q / s^2``."""
    s2 = sigma * sigma
    return profiled - m * np.log(2 * np.pi * q / m) - m + m * np.log(2 * np.pi * s2) + q / s2


def satterthwaite_df(
    varpar: np.ndarray,
    deviance: Callable[[np.ndarray], float],
    covariance: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    """Satterthwaite df of each fixed effect at ``varpar`` (theta..., sigma).

    ``deviance(varpar)`` is -2 log-likelihood profiled over beta; ``covariance(varpar)``
    is the fixed effects' covariance matrix ``sigma^2 (X'W^{-1}X)^{-1}`` there.
    """
    hessian = nd.Hessian(deviance, **STEPS)(varpar)
    vcov_varpar = 2 * np.linalg.pinv(hessian)  # lmerTest: a generalised inverse if needed
    jacobian = nd.Jacobian(lambda v: np.diag(covariance(v)), **STEPS)(varpar)
    jacobian = np.atleast_2d(jacobian).reshape(-1, varpar.size)
    variance = np.diag(covariance(varpar))
    denominator = np.einsum("ij,jk,ik->i", jacobian, vcov_varpar, jacobian)
    return 2 * variance**2 / denominator


def cholesky_factor(psi: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor of a positive semi-definite 2x2 matrix, zeros kept (numpy's
    cholesky refuses a singular matrix, the very case a boundary fit gives)."""
    l11 = np.sqrt(max(psi[0, 0], 0.0))
    l21 = psi[1, 0] / l11 if l11 > 0 else 0.0
    l22 = np.sqrt(max(psi[1, 1] - l21 * l21, 0.0))
    return np.array([[l11, 0.0], [l21, l22]])


def at_boundary(relative_sds: dict[str, float]) -> list[str]:
    """The components whose relative SD (theta's diagonal) is below lme4's tolerance."""
    return [name for name, value in relative_sds.items() if value < SINGULAR_TOLERANCE]

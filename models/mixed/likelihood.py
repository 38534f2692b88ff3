"""What the optimiser needs of a likelihood: the profile at one Psi and its derivatives.

Two likelihoods implement it: ``models.mixed.line`` for the fixed part equal to the
random part (the primary model; 2x2 closed forms) and ``models.mixed.design`` for any
fixed part. Both are statsmodels MixedLM's (constants, REML/ML, parametrisation), with
``Psi = G / sigma^2`` and beta and sigma^2 profiled out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from models.mixed.sums import DesignSums

# dPsi / dpsi_j for the packed lower triangle (psi_11, psi_21, psi_22), as statsmodels.
BASIS = np.array([[[1.0, 0.0], [0.0, 0.0]], [[0.0, 1.0], [1.0, 0.0]], [[0.0, 0.0], [0.0, 1.0]]])


@dataclass
class Profile:
    """The sigma- and beta-profiled likelihood at one Psi, with the pieces derivatives need.

    Per-patient 2x2 and 2xp matrices are kept by their entries and rows (arrays over
    patients): numpy multiplies stacks of tiny matrices slowly, elementwise passes fast.
    """

    psi: np.ndarray  # (2, 2) relative covariance G / sigma^2
    h: np.ndarray  # (3, k) Z_i'W_i^{-1}Z_i, entries 00, 01, 11
    v: np.ndarray  # (2, k) Z_i'W_i^{-1}(y_i - X_i beta)
    s: np.ndarray  # (p, p) X'W^{-1}X summed over patients
    beta: np.ndarray  # (p,) GLS estimate (of the centred outcome)
    q: float  # sum of r_i'W_i^{-1}r_i
    deviance: float  # -2 log-likelihood, statsmodels' constants
    f: np.ndarray | None = None  # (2, k, p) rows of Z_i'W_i^{-1}X_i; None when X_i = Z_i


@dataclass(frozen=True)
class Likelihood:
    """One likelihood's functions, as the optimiser calls them."""

    profile: Callable[[np.ndarray, DesignSums], Profile]  # at Psi
    gradient: Callable[[Profile, DesignSums], np.ndarray]  # d deviance / dPsi, 2x2
    hessian: Callable[[Profile, DesignSums], np.ndarray]  # log-likelihood in (beta, psi)
    newton_steps: int  # at most, after L-BFGS-B


def dot(x: np.ndarray, y: np.ndarray) -> float:
    """sum(x * y) without BLAS: OpenBLAS threads on long dot products stall for 100 ms when
    the two cores are busy (measured: 0.04 ms -> 100 ms per gradient); a ufunc does not."""
    return float(np.multiply(x, y).sum())

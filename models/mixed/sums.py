"""Per-patient sums: all a mixed model with a random intercept and slope needs of the rows.

The random part is ``Z_i = [1, t]`` for every model the study fits. Its sums per patient,
``Z_i'Z_i``, ``Z_i'y_i`` and ``y_i'y_i``, are stored by their entries in rows (arrays of
length n_patients), so that every per-patient operation of the likelihood is an
elementwise pass over those arrays, not a loop over rows or patients (models.mixed says
why). When the fixed part ``X_i`` is the random part (the primary model, ``y ~ t``) that
is all; any other fixed part (any patsy formula, as statsmodels builds it) adds
``Z_i'X_i`` per patient and ``X'X``, ``X'y`` over all rows (``FixedSums``).

The outcome is centred on its mean before summing (against cancellation in ``y'y``):
only the intercept moves, and the fits add the mean back.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import patsy

# (psi_11, psi_21, psi_22): the packed lower triangle of a symmetric 2x2 matrix.
LOWER = (np.array([0, 1, 1]), np.array([0, 0, 1]))


@dataclass(frozen=True)
class FixedSums:
    """The fixed part when it is not the random part."""

    ztx: np.ndarray  # (k, 2, p) Z_i'X_i
    xtx: np.ndarray  # (p, p) X'X over all rows
    xty: np.ndarray  # (p,) X'y over all rows


@dataclass(frozen=True)
class DesignSums:
    """Per-patient sums of one model's rows (time already divided by the time scale)."""

    ztz: np.ndarray  # (3, k) Z_i'Z_i entries 00, 01, 11: n_i, sum t, sum t^2
    zty: np.ndarray  # (2, k) sum y, sum t y (y centred)
    yty: np.ndarray  # (k,) sum y^2 (y centred)
    terms: list[str]  # names of the fixed effects, in the order of beta
    y_shift: float  # mean of y, subtracted from it (shifts the intercept only)
    n_observations: int
    reml: bool
    fixed: FixedSums | None = None  # None: X_i = Z_i

    @property
    def df(self) -> int:
        """N - p under REML, N under ML: the power of sigma^2 in the likelihood."""
        return self.n_observations - (len(self.terms) if self.reml else 0)

    @property
    def n_patients(self) -> int:
        return len(self.yty)


def design_sums(
    data: pd.DataFrame,
    *,
    outcome: str,
    time: str,
    group: str,
    reml: bool,
    time_scale: float = 1.0,
    fixed: str | None = None,
) -> DesignSums:
    """``outcome ~ fixed`` (default ``outcome ~ time``) with random intercept and slope of
    ``time`` per ``group``, reduced to sums; time is divided by ``time_scale`` first."""
    if fixed in (None, time):
        return line_sums(
            data, outcome=outcome, time=time, group=group, reml=reml, time_scale=time_scale
        )
    scaled = data.assign(**{time: data[time] / time_scale})
    return formula_sums(scaled, f"{outcome} ~ {fixed}", time=time, group=group, reml=reml)


def line_sums(
    data: pd.DataFrame, *, outcome: str, time: str, group: str, reml: bool, time_scale: float
) -> DesignSums:
    """``outcome ~ time``, X_i = Z_i: one ``bincount`` per sum (rows with NA dropped)."""
    frame = data[[outcome, time, group]].dropna()
    if frame.empty:
        raise ValueError(f"no rows with {outcome}, {time} and {group} all present")
    codes, _ = pd.factorize(frame[group], sort=False)
    t = frame[time].to_numpy(dtype=float) / time_scale
    y = frame[outcome].to_numpy(dtype=float)
    return _random_part(codes, t, y, terms=["Intercept", time], reml=reml)


def formula_sums(
    data: pd.DataFrame, formula: str, *, time: str, group: str, reml: bool
) -> DesignSums:
    """``formula`` as patsy builds it for statsmodels, reduced to sums per group.

    ``data[time]`` must already be in the fitting scale; rows with a missing value in the
    formula's columns are dropped (patsy's default, as statsmodels). Any formula with an
    intercept, ``outcome ~ time`` included (tests compare it with ``line_sums``).
    """
    data = data.reset_index(drop=True)  # patsy keeps the index of the rows it keeps
    y_frame, x_frame = patsy.dmatrices(formula, data, return_type="dataframe")
    if "Intercept" not in x_frame.columns:
        raise ValueError(f"the fast engine needs an intercept in {formula!r}")
    codes, _ = pd.factorize(data.loc[x_frame.index, group], sort=False)
    y = y_frame.to_numpy(dtype=float)[:, 0]
    x = x_frame.to_numpy(dtype=float)
    t = data.loc[x_frame.index, time].to_numpy(dtype=float)
    sums = _random_part(codes, t, y, terms=list(x_frame.columns), reml=reml)
    z = np.column_stack([np.ones_like(t), t])
    k = sums.n_patients
    ztx = np.array(
        [[_per_patient(codes, z[:, i] * x[:, j], k) for j in range(x.shape[1])] for i in range(2)]
    )
    centred = y - sums.y_shift
    fixed_sums = FixedSums(ztx=np.moveaxis(ztx, -1, 0), xtx=x.T @ x, xty=x.T @ centred)
    return replace(sums, fixed=fixed_sums)


def _random_part(
    codes: np.ndarray, t: np.ndarray, y: np.ndarray, *, terms: list[str], reml: bool
) -> DesignSums:
    """The sums of the random part ``Z_i = [1, t]`` (y centred on its mean first)."""
    y_shift = float(y.mean())
    y = y - y_shift
    k = int(codes.max()) + 1
    ztz = np.array(
        [_per_patient(codes, None, k), _per_patient(codes, t, k), _per_patient(codes, t * t, k)]
    )
    zty = np.array([_per_patient(codes, y, k), _per_patient(codes, t * y, k)])
    yty = _per_patient(codes, y * y, k)
    return DesignSums(ztz, zty, yty, terms, y_shift, len(y), reml)


def _per_patient(codes: np.ndarray, weights: np.ndarray | None, k: int) -> np.ndarray:
    return np.bincount(codes, weights=weights, minlength=k)


def starting_theta(sums: DesignSums) -> np.ndarray:
    """Cholesky factor of a moment estimate of Psi = G / sigma^2 from per-patient OLS lines.

    cov(b_i_ols) = G + sigma^2 E[(Z_i'Z_i)^{-1}]; patients with fewer than three visits or
    one distinct time are left out. Falls back to Psi = I if too few patients are left.
    A fixed part beyond the line only shifts those lines: a start, not an estimate.
    """
    a0, a1, a2 = sums.ztz
    det = a0 * a2 - a1**2
    ok = (a0 >= 3) & (det > 1e-9 * a0 * a2)
    if ok.sum() < 3:
        return np.array([1.0, 0.0, 1.0])
    a0, a1, a2, det = a0[ok], a1[ok], a2[ok], det[ok]
    c0, c1 = sums.zty[:, ok]
    b = np.array([a2 * c0 - a1 * c1, a0 * c1 - a1 * c0]) / det  # OLS line per patient
    sigma2 = max((sums.yty[ok] - c0 * b[0] - c1 * b[1]).sum() / (a0 - 2).sum(), 1e-12)
    mean_inverse = (np.array([a2, -a1, a0]) / det).mean(1)
    g = np.cov(b) - sigma2 * symmetric(mean_inverse)
    values, vectors = np.linalg.eigh(g / sigma2)
    psi = vectors @ np.diag(np.maximum(values, 1e-3 * max(values.max(), 1e-6))) @ vectors.T
    return np.linalg.cholesky(psi)[LOWER]


def symmetric(entries: np.ndarray) -> np.ndarray:
    """Entries (00, 01, 11) -> the symmetric 2x2 matrix."""
    return np.array([[entries[0], entries[1]], [entries[1], entries[2]]])

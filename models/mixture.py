"""What the trajectory models read of a cohort: per-patient sums, and where they start.

Both trajectory models (models.growth_mixture: the growth mixture model, and LCGA as its
case without random effects) need, of each patient, only the number of visits, y'y and
X'y (X: the polynomial design of the months answered); X'X depends only on the *pattern*
of months answered. A million patients have a few thousand patterns, so once the sums
are made no (patients x months) array is needed.

Written here because no maintained Python package fits polynomial group trajectories
with random effects (stepmix fits a free mean per visit; scikit-learn's mixtures have
no longitudinal design).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy import sparse

Array = np.ndarray  # betas: (K, P); design: (times, P)
LOG_2PI = np.log(2 * np.pi)


@dataclass(frozen=True)
class PatientSums:
    """Per patient: visits, y'y and X'y; per pattern of months answered: X'X.

    Within group k a patient's residual sum of squares is
    ``y'y - 2 beta_k' X'y + beta_k' X'X beta_k`` (observed visits only), and with random
    effects every term of the likelihood is such a quadratic form (models.growth_mixture):
    the models work on these sums, never on (n, K, T) residuals.
    """

    n_visits: Array  # (n,)
    yy: Array  # (n,)
    xy: Array  # (n, P)
    pattern: Array  # (n,) row of ``xx`` and ``masks``
    masks: Array  # (patterns, T) 1 where the month is answered
    design: Array  # (T, P)

    @classmethod
    def from_patient_sums(
        cls, n_visits: Array, yy: Array, xy: Array, codes: Array, design: Array
    ) -> PatientSums:
        """Sums made elsewhere; ``codes``: each patient's months answered as bits (2^t)."""
        unique, pattern = np.unique(codes.astype(np.int64), return_inverse=True)
        masks = ((unique[:, None] >> np.arange(len(design))) & 1).astype(float)
        return cls(n_visits, yy, xy, pattern.ravel(), masks, design)

    @classmethod
    def from_visits(
        cls, patient: Array, time: Array, y: Array, n_patients: int, design: Array
    ) -> PatientSums:
        """Sums of long data: one row per visit (patient index, time index, outcome)."""
        codes = np.bincount(patient, weights=np.exp2(time), minlength=n_patients)
        xy = np.column_stack(
            [np.bincount(patient, y * design[time, j], n_patients) for j in range(design.shape[1])]
        )
        n_visits = np.bincount(patient, minlength=n_patients).astype(float)
        yy = np.bincount(patient, y * y, n_patients)
        return cls.from_patient_sums(n_visits, yy, xy, codes, design)

    @classmethod
    def from_matrix(cls, y: Array, mask: Array, design: Array) -> PatientSums:
        """Sums of a (patients x times) matrix of outcomes, ``mask`` 1 where observed."""
        patient, time = np.nonzero(mask)
        return cls.from_visits(patient, time, y[patient, time], len(y), design)

    @property
    def n_patients(self) -> int:
        return len(self.n_visits)

    @cached_property
    def xx(self) -> Array:
        """(patterns, P, P) X'X of each pattern of months answered."""
        return np.einsum("st,ta,tb->sab", self.masks, self.design, self.design)

    @cached_property
    def pattern_xx(self) -> Array:
        """(P, P, patterns) the same X'X, entry first (models.growth_mixture's layout)."""
        return np.ascontiguousarray(self.xx.transpose(1, 2, 0))

    @cached_property
    def xy_columns(self) -> Array:
        """(P, n) X'y, one contiguous row per design column."""
        return np.ascontiguousarray(self.xy.T)

    @cached_property
    def xx_columns(self) -> Array:
        """(P, P, n) each patient's X'X (its pattern's), one contiguous row per entry."""
        return self.pattern_xx[:, :, self.pattern]

    @cached_property
    def by_pattern(self) -> sparse.csr_matrix:
        """(patterns, n) indicator: ``by_pattern @ a`` sums a per-patient array by pattern."""
        n = self.n_patients
        ones = np.ones(n)
        return sparse.csr_matrix((ones, (self.pattern, np.arange(n))), (len(self.masks), n))

    def subset(self, rows: Array) -> PatientSums:
        """The sums of some patients (their patterns kept as they are)."""
        return PatientSums(
            self.n_visits[rows], self.yy[rows], self.xy[rows], self.pattern[rows],
            self.masks, self.design,
        )  # fmt: skip


def residual_ss(sums: PatientSums, betas: Array) -> Array:
    """(n, K) residual sum of squares of each patient's visits under each group."""
    quadratic = np.einsum("kp,spq,kq->sk", betas, sums.xx, betas)
    return sums.yy[:, None] - 2 * sums.xy @ betas.T + quadratic[sums.pattern]


def pooled_line(sums: PatientSums) -> tuple[Array, float]:
    """Least squares on every visit (the one-group trajectory) and its residual SD."""
    weight = np.bincount(sums.pattern, minlength=len(sums.masks))
    beta = np.linalg.solve(np.einsum("s,spq->pq", weight, sums.xx), sums.xy.sum(axis=0))
    rss = residual_ss(sums, beta[None, :]).sum()
    return beta, float(np.sqrt(max(rss, 0.0) / sums.n_visits.sum()))


def random_start(sums: PatientSums, k: int, rng: np.random.Generator) -> tuple[Array, float]:
    """Pooled trajectory shifted to k distinct patients' mean levels, pooled SD."""
    pooled, _ = pooled_line(sums)
    levels = sums.xy[:, 0] / sums.n_visits  # design column 0 is the constant: y mean
    chosen = rng.choice(levels, k, replace=len(levels) < k)
    centres = np.sort(chosen) + rng.normal(0, 0.05, k)
    betas = np.tile(pooled, (k, 1))
    betas[:, 0] += centres - levels.mean()
    n = sums.n_visits.sum()
    return betas, float(np.sqrt(sums.yy.sum() / n - (sums.xy[:, 0].sum() / n) ** 2))


def same_optimum(a: float, b: float) -> bool:
    """Two log-likelihoods equal to the optimiser's precision (one optimum found twice)."""
    return abs(a - b) <= 1e-6 * max(1.0, abs(a))

"""Growth mixture model (GMM): class-specific mean trajectories, one random-effects law.

Model (Muthen & Shedden 1999; R lcmm's ``hlme(..., mixture=, random=~1+t)`` with a
covariance common to the classes): patient i is in class k with probability pi_k, and

    y_it = x_t' beta_k + z_t' b_i + e_it,    b_i ~ N(0, G),    e_it ~ N(0, sigma^2),

z_t being the first q columns of x_t (q = 2: random intercept and slope; q = 1: random
intercept; q = 0: no random effect, which is LCGA). Why: LCGA has no spread within a
class, so patients who vary around their class's course make it add classes (BIC falls
with K); here that spread is G's, and the classes describe only the mean courses.

Marginally ``y_i ~ N(X_i beta_k, V_i)``, ``V_i = sigma^2 I + Z_i G Z_i'``. With
``G = L L'`` and ``A = I + L' Z'Z L / sigma^2``, Woodbury and Sylvester give

    V^-1 = I / sigma^2 - Z W Z',   W = L A^-1 L' / sigma^4,   log|V| = n log sigma^2 + log|A|,

and A, W depend on a patient only through the months answered: they are computed once
per pattern (models.mixture.PatientSums), each patient's terms from its y'y and X'y.

Fitting: the marginal log-likelihood is maximised by BFGS with its analytic gradient
(Fisher's identity: the posterior-weighted sum of each class's gradient) in (share
logits, betas, Cholesky factor of G, log sigma); Newton steps on the Hessian,
differentiated numerically from that gradient, then polish the optimum and give the
estimates' covariance. Why not EM: EM for variance components needs hundreds of
iterations. Checked against lme4 (one class) and flexmix (LCGA) in tests.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy import optimize
from scipy.special import softmax

from models.mixture import LOG_2PI, PatientSums, same_optimum

Array = np.ndarray
EMPTY_SHARE = 1e-6  # a class this small has emptied: its share is at the boundary (0)
ROUNDS = 3  # Newton rounds (a numerical Hessian each) after BFGS
PATIENCE = 5  # starts in a row without a better optimum, after which no more are tried
MIN_SD = 1e-4  # a Cholesky diagonal this small: G is singular (at its boundary)


@dataclass
class GmmParameters:
    """A point of the parameter space: shares, class trajectories, G = L L', sigma."""

    shares: Array  # (K,)
    betas: Array  # (K, P)
    chol: Array  # (q, q) lower-triangular factor of G
    sigma: float

    @property
    def covariance(self) -> Array:
        return self.chol @ self.chol.T


@dataclass
class GmmFit:
    """One fitted model: its parameters, log-likelihood, posteriors, covariance, checks."""

    params: GmmParameters
    log_likelihood: float
    posterior: Array  # (n, K)
    covariance: Array  # inverse observed information of the packed parameters
    converged: bool
    starts: int  # starts run
    replicated: int  # starts that reached the best log-likelihood

    @property
    def n_groups(self) -> int:
        return len(self.params.shares)

    @property
    def n_parameters(self) -> int:
        q = len(self.params.chol)
        return self.n_groups - 1 + self.params.betas.size + q * (q + 1) // 2 + 1

    def bic(self, n_subjects: int) -> float:
        """Schwarz criterion with the number of patients as n, lower is better."""
        return -2 * self.log_likelihood + self.n_parameters * np.log(n_subjects)

    @property
    def at_boundary(self) -> bool:
        """G singular (a variance at 0, or a correlation at +-1): its boundary, as lme4's
        ``isSingular`` says of a Cholesky factor with a zero on its diagonal."""
        return bool(np.any(np.abs(np.diag(self.params.chol)) < MIN_SD))


def pack(params: GmmParameters) -> Array:
    """Free parameters: logits against class 1, betas, Cholesky factor of G, log sigma.

    The Cholesky factor's diagonal is left free (not logged), as lme4's theta: a variance
    at 0 is then an ordinary point where the likelihood has curvature, and Newton's
    steps and the information matrix work there too.
    """
    with np.errstate(divide="ignore"):
        logits = np.clip(np.log(params.shares[1:]) - np.log(params.shares[0]), -30.0, 30.0)
    lower = params.chol[np.tril_indices(len(params.chol))]
    return np.concatenate([logits, params.betas.ravel(), lower, [np.log(params.sigma)]])


def unpack(theta: Array, k: int, p: int, q: int) -> GmmParameters:
    """The inverse of ``pack``."""
    shares = softmax(np.concatenate([[0.0], theta[: k - 1]]))
    betas = theta[k - 1 : k - 1 + k * p].reshape(k, p)
    chol = np.zeros((q, q))
    chol[np.tril_indices(q)] = theta[k - 1 + k * p : -1]
    return GmmParameters(shares, betas, chol, float(np.exp(theta[-1])))


def _product(a: Array, b: Array) -> Array:
    """(r, c, S): per pattern, a (r, k, S or 1) times b (k, c, S or 1).

    Per-pattern matrices are stored entry first, (rows, cols, patterns): a product is
    then a few multiplications of pattern-long rows, where numpy's stacked matmul would
    loop over thousands of 2 x 2 matrices.
    """
    return (a[:, :, None, :] * b[None, :, :, :]).sum(axis=1)


def _inverse_and_log_det(a: Array) -> tuple[Array, Array]:
    """Inverse and log-determinant of (q, q, S) symmetric positive definite matrices."""
    q, n = a.shape[0], a.shape[-1]
    if q == 0:
        return a, np.zeros(n)
    if q == 1:
        return 1 / a, np.log(a[0, 0])
    if q == 2:
        det = a[0, 0] * a[1, 1] - a[0, 1] * a[1, 0]
        inverse = np.array([[a[1, 1], -a[0, 1]], [-a[1, 0], a[0, 0]]]) / det
        return inverse, np.log(det)
    stacked = np.moveaxis(a, -1, 0)
    return np.moveaxis(np.linalg.inv(stacked), 0, -1), np.linalg.slogdet(stacked)[1]


@dataclass
class PatternTerms:
    """What G and sigma make of each pattern of months answered (X, Z its design rows),
    each a (rows, cols, patterns) array.

    Z is the first q columns of X, so Z'V^-1 X and Z'V^-1 Z are the first q rows of
    X'V^-1 X and need no arrays of their own.
    """

    log_det_a: Array  # (S,) log|A|, A = I + L'Z'Z L / sigma^2
    w: Array  # (q, q, S) W: V^-1 = I / sigma^2 - Z W Z'
    xvx: Array  # (P, P, S) X'V^-1 X
    xv2x: Array  # (P, P, S) X'V^-2 X
    trace_v: Array  # (S,) tr V^-1 minus n / sigma^2


def pattern_terms(params: GmmParameters, sums: PatientSums) -> PatternTerms:
    """Woodbury's pieces for every pattern, from its X'X."""
    q, s2 = len(params.chol), params.sigma**2
    xx = sums.pattern_xx
    zz, zx, xz = xx[:q, :q], xx[:q, :], xx[:, :q]
    chol = params.chol[:, :, None]
    a = np.eye(q)[:, :, None] + _product(_product(chol.transpose(1, 0, 2), zz), chol) / s2
    a_inv, log_det_a = _inverse_and_log_det(a)
    w = _product(_product(chol, a_inv), chol.transpose(1, 0, 2)) / s2**2
    xzw = _product(xz, w)
    xzw_zx = _product(xzw, zx)
    return PatternTerms(
        log_det_a=log_det_a,
        w=w,
        xvx=xx / s2 - xzw_zx,
        xv2x=xx / s2**2 - 2 * xzw_zx / s2 + _product(_product(xzw, zz), _product(w, zx)),
        trace_v=-np.einsum("abs,bas->s", w, zz),
    )


def _times(matrix: Array, vector: Array) -> Array:
    """(rows, n): per patient, ``matrix`` (rows, cols, n) times ``vector`` (cols, n)."""
    return (matrix * vector[None]).sum(axis=1)


def _quadratic(betas: Array, matrix: Array) -> Array:
    """(K, S): beta_k' M_s beta_k for every class and pattern (M: (P, P, S))."""
    k, p = betas.shape
    outer = (betas[:, :, None] * betas[:, None, :]).reshape(k, p * p)
    return outer @ matrix.reshape(p * p, -1)


@dataclass
class PatientTerms:
    """Each patient's quadratic forms in y under V^-1 (and V^-2, for sigma's gradient).

    Under class k a patient's Mahalanobis term is ``yvy - 2 beta_k'xvy +
    beta_k' X'V^-1X beta_k``: K enters only through a (K, P) x (P, n) product. Arrays
    are component first, (P, n): sums over P are then P additions of contiguous rows.
    """

    yvy: Array  # (n,) y'V^-1 y
    xvy: Array  # (P, n) X'V^-1 y; its first q rows are Z'V^-1 y
    yv2y: Array  # (n,) y'V^-2 y
    xv2y: Array  # (P, n) X'V^-2 y


def patient_terms(params: GmmParameters, sums: PatientSums, pt: PatternTerms) -> PatientTerms:
    """The quadratic forms of every patient, from its y'y and X'y and its pattern's W."""
    q, s2 = len(params.chol), params.sigma**2
    xy, xz = sums.xy_columns, sums.xx_columns[:, :q]
    w = pt.w[:, :, sums.pattern]
    wzy = _times(w, xy[:q])  # W Z'y
    xz_wzy = _times(xz, wzy)  # X'Z W Z'y; its first q rows: Z'Z W Z'y
    zy_wzy = (xy[:q] * wzy).sum(axis=0)
    w_zz_wzy = _times(w, xz_wzy[:q])
    return PatientTerms(
        yvy=sums.yy / s2 - zy_wzy,
        xvy=xy / s2 - xz_wzy,
        yv2y=sums.yy / s2**2 - 2 * zy_wzy / s2 + (wzy * xz_wzy[:q]).sum(axis=0),
        xv2y=xy / s2**2 - 2 * xz_wzy / s2 + _times(xz, w_zz_wzy),
    )


def class_log_density(
    params: GmmParameters, sums: PatientSums, pt: PatternTerms, yt: PatientTerms
) -> Array:
    """(K, n) log-density of each patient's visits under each class."""
    s2 = params.sigma**2
    bxvxb = _quadratic(params.betas, pt.xvx)
    quad = yt.yvy - 2 * params.betas @ yt.xvy + bxvxb[:, sums.pattern]
    constant = sums.n_visits * (LOG_2PI + np.log(s2)) + pt.log_det_a[sums.pattern]
    return -0.5 * (quad + constant)


def joint_posterior(params: GmmParameters, log_density: Array) -> tuple[Array, float]:
    """(K, n) posterior class probabilities and the log-likelihood."""
    with np.errstate(divide="ignore"):
        joint = log_density + np.log(params.shares)[:, None]
    top = joint.max(axis=0)
    density = np.exp(joint - top)
    total = density.sum(axis=0)
    return density / total, float((np.log(total) + top).sum())


def gradient(
    params: GmmParameters, sums: PatientSums, pt: PatternTerms, yt: PatientTerms, post: Array
) -> Array:
    """d log-likelihood / d packed parameters, by Fisher's identity.

    With r = y - X beta_k, d log f / d beta_k = X'V^-1 r, d log f / d G =
    (u u' - Z'V^-1 Z) / 2 with u = Z'V^-1 r, d log f / d sigma^2 = (r'V^-2 r - tr V^-1) / 2;
    each summed with the posterior weights, the sums over classes taken through the
    posterior mean coefficients ``m_i`` and each pattern's posterior mass.
    """
    q, s2 = len(params.chol), params.sigma**2
    betas = params.betas
    k, p = betas.shape
    mass = sums.by_pattern @ post.T  # (S, K)
    mean_beta = betas.T @ post  # (P, n)
    xvx_mass = (pt.xvx.reshape(p * p, -1) @ mass).reshape(p, p, k)
    d_beta = post @ yt.xvy.T - np.einsum("pqk,kq->kp", xvx_mass, betas)
    zvy = yt.xvy[:q]
    f_m = _times(pt.xvx[:q][:, :, sums.pattern], mean_beta)  # Z'V^-1 X m_i
    fb = np.tensordot(betas, pt.xvx[:q], axes=([1], [1]))  # (K, q, S): Z'V^-1 X beta_k
    columns = k * len(mass)
    weighted_fb = (fb * mass.T[:, None, :]).transpose(1, 0, 2).reshape(q, columns)
    uu = zvy @ zvy.T - zvy @ f_m.T - f_m @ zvy.T
    uu += weighted_fb @ fb.transpose(1, 0, 2).reshape(q, columns).T
    count = np.bincount(sums.pattern, minlength=len(mass)).astype(float)
    d_g = 0.5 * (uu - pt.xvx[:q, :q] @ count)
    r_v2_r = (
        yt.yv2y.sum()
        - 2 * np.sum(mean_beta * yt.xv2y)
        + np.sum(mass.T * _quadratic(betas, pt.xv2x))
    )
    trace = sums.n_visits.sum() / s2 + pt.trace_v @ count
    d_s2 = 0.5 * (r_v2_r - trace)
    d_chol = 2 * d_g @ params.chol  # G = L L'
    d_logit = (post.sum(axis=1) - post.shape[1] * params.shares)[1:]
    return np.concatenate([d_logit, d_beta.ravel(), d_chol[np.tril_indices(q)], [2 * s2 * d_s2]])


def evaluate(params: GmmParameters, sums: PatientSums) -> tuple[Array, float, Array]:
    """(K, n) posterior, log-likelihood and gradient at ``params``."""
    pt = pattern_terms(params, sums)
    yt = patient_terms(params, sums, pt)
    post, loglik = joint_posterior(params, class_log_density(params, sums, pt, yt))
    return post, loglik, gradient(params, sums, pt, yt, post)


def loglik_and_gradient(theta: Array, sums: PatientSums, shape: tuple[int, int, int]):
    """Log-likelihood and its gradient at packed parameters."""
    _, loglik, grad = evaluate(unpack(theta, *shape), sums)
    return loglik, grad


def _objective(theta: Array, sums: PatientSums, shape: tuple[int, int, int]):
    """-log-likelihood per patient (a scale BFGS's tolerance suits) and its gradient."""
    loglik, grad = loglik_and_gradient(theta, sums, shape)
    if not np.isfinite(loglik):
        return np.inf, np.zeros_like(theta)
    return -loglik / sums.n_patients, -grad / sums.n_patients


def held(theta: Array, shape: tuple[int, int, int]) -> Array:
    """Logits of emptied classes: the likelihood is flat along them, so Newton steps and
    the covariance leave them out (their SEs are undefined)."""
    k = shape[0]
    mask = np.zeros(len(theta), bool)
    mask[: k - 1] = unpack(theta, *shape).shares[1:] < EMPTY_SHARE
    return mask


def maximise(start: GmmParameters, sums: PatientSums) -> tuple[Array, float]:
    """BFGS from one start: the packed optimum and its log-likelihood.

    BFGS rather than L-BFGS-B: the latter calls threaded BLAS on tiny matrices and ran
    ten times slower on a busy machine. No bound is needed: G's Cholesky factor is free,
    and the gradient along an emptying class's logit goes to 0 with its share.
    """
    shape = (len(start.shares), start.betas.shape[1], len(start.chol))
    result = optimize.minimize(
        _objective,
        pack(start),
        args=(sums, shape),
        jac=True,
        method="BFGS",
        options={"maxiter": 2000, "gtol": 1e-5},
    )
    return result.x, float(-result.fun * sums.n_patients)


def hessian(theta: Array, sums: PatientSums, shape: tuple[int, int, int]) -> Array:
    """Observed Hessian: forward differences of the analytic gradient, symmetrised (its
    relative error, about the step's 1e-6, is far below what the CIs need)."""
    step = 1e-6 * np.maximum(1.0, np.abs(theta))
    base = loglik_and_gradient(theta, sums, shape)[1]
    columns = []
    for j in range(len(theta)):
        moved = theta.copy()
        moved[j] += step[j]
        columns.append((loglik_and_gradient(moved, sums, shape)[1] - base) / step[j])
    matrix = np.column_stack(columns)
    return (matrix + matrix.T) / 2


def newton_polish(theta: Array, sums: PatientSums, shape: tuple[int, int, int]):
    """Newton steps from BFGS's optimum: up to ROUNDS numerical Hessians, each used for
    three steps (halved while the log-likelihood falls).

    Returns the point, its log-likelihood, the last Hessian, the free parameters (not
    ``held``) and whether the optimum is reached: H negative definite and the gain a
    further Newton step predicts, g'H^-1 g / 2, below 1e-6 in log-likelihood.
    """
    free = ~held(theta, shape)
    loglik, grad = loglik_and_gradient(theta, sums, shape)
    for _round in range(ROUNDS):
        hess = hessian(theta, sums, shape)
        block = hess[np.ix_(free, free)]
        if not np.all(np.isfinite(block)) or np.any(np.linalg.eigvalsh(block) >= 0):
            return theta, loglik, hess, free, False
        for _step in range(3):
            step = np.linalg.solve(block, -grad[free])
            for _halving in range(8):
                trial = theta.copy()
                trial[free] += step
                new, new_grad = loglik_and_gradient(trial, sums, shape)
                if new >= loglik:
                    theta, loglik, grad = trial, new, new_grad
                    break
                step = step / 2
            else:
                break  # no step up: this Hessian has done what it can
        gain = -0.5 * grad[free] @ np.linalg.solve(block, grad[free])
        if gain < 1e-6:
            return theta, loglik, hess, free, True
    return theta, loglik, hess, free, False


def fit_gmm(sums: PatientSums, starts: Iterable[GmmParameters], *, max_starts: int) -> GmmFit:
    """The best of the given starts (each maximised), polished and described.

    Starts stop early once two of them have found the best log-likelihood (the optimum
    is replicated: further starts would most likely find it again), or once PATIENCE
    starts in a row have not improved on it (an over-fitted model's flat likelihood has
    many optima; ``replicated`` = 1 then says the best was found once).
    """
    best: tuple[Array, float, tuple[int, int, int]] | None = None
    replicated = run = since_best = 0
    for start in starts:
        if run >= max_starts or replicated >= 2 or since_best >= PATIENCE:
            break
        theta, loglik = maximise(start, sums)
        run += 1
        since_best += 1
        if best is not None and same_optimum(loglik, best[1]):
            replicated += 1
        elif best is None or loglik > best[1]:
            shape = (len(start.shares), start.betas.shape[1], len(start.chol))
            best, replicated, since_best = (theta, loglik, shape), 1, 0
    if best is None:
        raise ValueError("the growth mixture model needs at least one start")
    return describe(unpack(best[0], *best[2]), sums, starts=run, replicated=replicated)


def describe(params: GmmParameters, sums: PatientSums, *, starts: int, replicated: int) -> GmmFit:
    """Number the classes from the lowest mean trajectory up, polish, take the covariance."""
    order = np.argsort((params.betas @ sums.design.T).mean(axis=1))
    params = GmmParameters(params.shares[order], params.betas[order], params.chol, params.sigma)
    shape = (len(params.shares), params.betas.shape[1], len(params.chol))
    theta, loglik, hess, free, converged = newton_polish(pack(params), sums, shape)
    covariance = np.full_like(hess, np.nan)
    block = np.ix_(free, free)
    if np.all(np.isfinite(hess[block])):
        covariance[block] = np.linalg.pinv(-hess[block])
    params = unpack(theta, *shape)
    return GmmFit(
        params, loglik, posterior_of(params, sums), covariance, converged, starts, replicated
    )


def posterior_of(params: GmmParameters, sums: PatientSums) -> Array:
    """(n, K) posterior class probabilities at ``params`` (no gradient)."""
    pt = pattern_terms(params, sums)
    log_density = class_log_density(params, sums, pt, patient_terms(params, sums, pt))
    return joint_posterior(params, log_density)[0].T

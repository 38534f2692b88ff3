"""The growth mixture model's engine: its likelihood, gradient, optimum and limit cases.

References: lme4 (one class: the linear mixed model, ML) and flexmix (no random effects:
LCGA), both fitted once by scripts/r/trajectory_reference.R on tests/data/
trajectory_visits.csv (300 simulated patients). R's lcmm, the reference for K >= 2 with
random effects, is not packaged for Debian: those fits are checked here against a direct
computation of the mixture's density, finite differences, and a known mixture.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy import stats
from scipy.optimize import approx_fprime
from scipy.special import logsumexp

from models import growth_mixture
from models.growth_mixture import (
    GmmParameters,
    evaluate,
    fit_gmm,
    loglik_and_gradient,
    pack,
    posterior_of,
)
from models.mixed import fit_growth_model
from models.mixture import PatientSums
from models.trajectory import first_start, trajectory_data

DATA = Path(__file__).resolve().parents[1] / "data"
DESIGN = np.vander(np.arange(13) / 12, 3, increasing=True)


@pytest.fixture(scope="module")
def reference() -> dict:
    return json.loads((DATA / "trajectory_reference.json").read_text())


@pytest.fixture(scope="module")
def visits() -> pl.DataFrame:
    return pl.read_csv(DATA / "trajectory_visits.csv")


def _random_data(n: int = 40, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.normal(6, 2, (n, 13))
    mask = (rng.random((n, 13)) > 0.3).astype(float)
    mask[:, 0] = 1
    return y, mask


PARAMS = GmmParameters(
    np.array([0.2, 0.3, 0.5]),
    np.array([[4.0, -1.5, 0.2], [6.0, -0.5, 0.0], [8.0, 0.1, -0.3]]),
    np.array([[0.8, 0.0], [-0.2, 0.5]]),
    0.9,
)


def _with_random_effects(q: int) -> GmmParameters:
    return GmmParameters(PARAMS.shares, PARAMS.betas, PARAMS.chol[:q, :q], PARAMS.sigma)


@pytest.mark.parametrize("q", [0, 1, 2])
def test_log_likelihood_is_the_mixture_of_multivariate_normals(q):
    """Per-pattern Woodbury sums give each patient's exact marginal density."""
    y, mask = _random_data()
    params = _with_random_effects(q)
    _, loglik, _ = evaluate(params, PatientSums.from_matrix(y, mask, DESIGN))
    total = 0.0
    for i in range(len(y)):
        seen = mask[i] > 0
        x, z = DESIGN[seen], DESIGN[seen][:, :q]
        v = params.sigma**2 * np.eye(seen.sum()) + z @ params.covariance @ z.T
        dens = [stats.multivariate_normal(x @ b, v).logpdf(y[i, seen]) for b in params.betas]
        total += logsumexp(np.array(dens) + np.log(params.shares))
    assert loglik == pytest.approx(total, abs=1e-9)


@pytest.mark.parametrize("q", [0, 1, 2])
def test_gradient_is_the_derivative_of_the_log_likelihood(q):
    y, mask = _random_data()
    sums = PatientSums.from_matrix(y, mask, DESIGN)
    theta = pack(_with_random_effects(q))
    _, grad = loglik_and_gradient(theta, sums, (3, 3, q))
    numeric = approx_fprime(theta, lambda t: loglik_and_gradient(t, sums, (3, 3, q))[0], 1e-6)
    assert grad == pytest.approx(numeric, rel=1e-5, abs=2e-3)


def _one_class(visits: pl.DataFrame, q: int):
    data = trajectory_data(visits)
    start = first_start(data.sums, q)
    return fit_gmm(data.sums, [start], max_starts=1)


@pytest.mark.parametrize(
    ("q", "name"), [(2, "gmm1_intercept_slope"), (1, "gmm1_intercept")], ids=["slope", "intercept"]
)
def test_one_class_is_lme4s_linear_mixed_model(visits, reference, q, name):
    """K = 1: nprs ~ t + t^2 + (t | patient) (or (1 | patient)) by ML, as lme4 fits it."""
    fit = _one_class(visits, q)
    r = reference[name]
    assert fit.converged
    assert fit.log_likelihood == pytest.approx(r["log_likelihood"], abs=1e-6)
    assert fit.params.betas[0] == pytest.approx(r["fixed"], abs=1e-5)
    assert fit.params.sigma == pytest.approx(r["sigma"], rel=1e-5)
    g = fit.params.covariance
    expected = [g[0, 0], g[1, 1], g[0, 1]] if q == 2 else [g[0, 0]]
    assert expected == pytest.approx(r["vcov"][: len(expected)], rel=1e-4)


def test_one_class_equals_the_project_mixed_model_engine(visits):
    """The same ML fit by models.mixed (the fast engine with a quadratic fixed part)."""
    fit = _one_class(visits, 2)
    frame = visits.with_columns(t=pl.col("month") / 12).with_columns(t2=pl.col("t") ** 2)
    engine = fit_growth_model(
        frame.to_pandas(), outcome="nprs", time="t", group="patient_key", reml=False,
        fixed="t + t2",
    )  # fmt: skip
    assert fit.log_likelihood == pytest.approx(engine.log_likelihood, abs=1e-6)
    assert fit.params.betas[0] == pytest.approx(engine.fixed_effects["estimate"], abs=1e-5)


def test_without_random_effects_the_likelihood_is_flexmixs(visits, reference):
    """q = 0 is LCGA: at flexmix's estimates our log-likelihood is flexmix's, to 1e-8.

    flexmix's M-step divides the residual sum of squares by its degrees of freedom, not
    by the number of visits, so its sigma is not quite the ML one: our maximum is higher
    by less than 2e-3, with the same groups.
    """
    data = trajectory_data(visits)
    for r in reference["lcga"]:
        betas = np.array([np.atleast_1d(r[c]) for c in ("intercept", "t", "t2")]).T
        at_flexmix = GmmParameters(np.atleast_1d(r["shares"]), betas, np.zeros((0, 0)), r["sigma"])
        assert evaluate(at_flexmix, data.sums)[1] == pytest.approx(r["log_likelihood"], abs=1e-8)
        order = np.argsort(betas[:, 0])
        start = GmmParameters(at_flexmix.shares[order], betas[order], np.zeros((0, 0)), r["sigma"])
        fit = fit_gmm(data.sums, [start], max_starts=1)
        assert 0 <= fit.log_likelihood - r["log_likelihood"] < 2e-3
        assert fit.n_parameters == r["df"]
        assert fit.params.shares == pytest.approx(at_flexmix.shares[order], abs=1e-4)
        assert fit.params.betas == pytest.approx(betas[order], abs=1e-2)


def _known_gmm(n: int, seed: int) -> tuple[PatientSums, np.ndarray, GmmParameters]:
    """Continuous outcomes drawn from a three-class GMM (random intercept and slope)."""
    rng = np.random.default_rng(seed)
    truth = GmmParameters(
        np.array([0.2, 0.3, 0.5]),
        np.array([[4.0, -1.5, 0.0], [6.0, -0.8, 0.0], [8.0, -0.3, 0.0]]),
        np.array([[0.5, 0.0], [-0.1, 0.35]]),
        0.8,
    )
    group = rng.choice(3, n, p=truth.shares)
    b = rng.multivariate_normal([0, 0], truth.covariance, n)
    y = truth.betas[group] @ DESIGN.T + b[:, [0]] + b[:, [1]] * DESIGN[:, 1]
    y = y + rng.normal(0, truth.sigma, y.shape)
    last = np.minimum(rng.geometric(0.08, n) - 1, 12)
    mask = (np.arange(13) <= last[:, None]).astype(float)
    return PatientSums.from_matrix(y, mask, DESIGN), group, truth


def test_fit_recovers_a_known_growth_mixture():
    """Shares, trajectories, G and sigma of a simulated GMM within a few SEs."""
    sums, group, truth = _known_gmm(1500, 3)
    start = GmmParameters(np.full(3, 1 / 3), truth.betas + 0.5, np.diag([0.8, 0.8]), 1.0)
    fit = fit_gmm(sums, [start], max_starts=1)
    assert fit.converged and not fit.at_boundary
    se = np.sqrt(np.diag(fit.covariance))
    betas_se = se[2:11].reshape(3, 3)
    assert np.abs((fit.params.betas - truth.betas) / betas_se).max() < 3.5
    assert fit.params.shares == pytest.approx(np.bincount(group) / len(group), abs=0.03)
    assert fit.params.covariance == pytest.approx(truth.covariance, abs=0.06)
    assert fit.params.sigma == pytest.approx(truth.sigma, abs=0.02)
    assigned = posterior_of(fit.params, sums).argmax(axis=1)
    assert (assigned == group).mean() > 0.85


def test_a_random_slope_the_data_do_not_have_is_flagged_singular():
    """Data with a random intercept only: G's estimate is singular (the slope's part at 0,
    as lme4's isSingular would say), the fit converged there, at the optimum the project's
    mixed-model engine finds for the same model."""
    rng = np.random.default_rng(0)
    n = 400
    y = 6 + rng.normal(0, 1, (n, 1)) + rng.normal(0, 0.7, (n, 13))
    sums = PatientSums.from_matrix(y, np.ones((n, 13)), DESIGN)
    start = GmmParameters(np.ones(1), np.array([[6.0, 0.0, 0.0]]), np.diag([1.0, 0.5]), 1.0)
    fit = fit_gmm(sums, [start], max_starts=1)
    assert fit.at_boundary and fit.converged
    assert abs(fit.params.chol[1, 1]) < 1e-8
    frame = pl.DataFrame(
        {"patient": np.repeat(np.arange(n), 13), "t": np.tile(DESIGN[:, 1], n), "y": y.ravel()}
    ).with_columns(t2=pl.col("t") ** 2)
    engine = fit_growth_model(
        frame.to_pandas(), outcome="y", time="t", group="patient", reml=False, fixed="t + t2"
    )
    assert fit.log_likelihood == pytest.approx(engine.log_likelihood, abs=1e-6)


def test_starts_stop_once_two_agree():
    """The same start twice: the second finds the first's optimum, and no more are run."""
    sums, _, truth = _known_gmm(300, 4)
    start = GmmParameters(truth.shares, truth.betas, truth.chol, truth.sigma)
    fit = fit_gmm(sums, [start] * 5, max_starts=5)
    assert (fit.starts, fit.replicated) == (2, 2)


def test_starts_stop_after_five_in_a_row_find_nothing_better(monkeypatch):
    """An over-fitted model's many optima: after PATIENCE starts without a better one, no
    more are tried, and the best (found once) is what is returned."""
    sums, _, truth = _known_gmm(300, 4)
    theta = pack(GmmParameters(truth.shares, truth.betas, truth.chol, truth.sigma))
    found = iter([-1000.0, -1003.0, -1001.0, -1002.0, -1004.0, -1005.0, -999.0])
    monkeypatch.setattr(growth_mixture, "maximise", lambda start, sums: (theta, next(found)))
    fit = fit_gmm(sums, [truth] * 20, max_starts=20)
    assert (fit.starts, fit.replicated) == (1 + growth_mixture.PATIENCE, 1)


def test_fit_refuses_no_starts():
    """Without a single start there is no fit to return: a clear error, not a crash."""
    sums, _, _ = _known_gmm(20, 1)
    with pytest.raises(ValueError, match="at least one start"):
        fit_gmm(sums, [], max_starts=3)

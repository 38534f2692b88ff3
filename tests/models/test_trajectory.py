"""Group-based trajectories: OLS when K = 1, a known mixture recovered, the simulator's groups."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import statsmodels.api as sm

from models.mixture import fit_mixture, parameter_covariance
from models.trajectory import (
    MONTHS,
    fit_trajectories,
    select_model,
    trajectory_data,
)
from tests.models.conftest import simulated_views

# Known case: three quadratic trajectories (NPRS at month m = b0 + b1 m + b2 m^2), sigma 1.
KNOWN = {"shares": [0.2, 0.3, 0.5], "b0": [3.0, 6.0, 8.0], "b1": [-0.25, -0.15, 0.0]}
KNOWN_B2 = [0.008, 0.004, 0.0]


def _known_mixture(n: int = 300, seed: int = 0) -> tuple[pl.DataFrame, np.ndarray]:
    """Long patient-months from three groups, with missed visits and dropout."""
    rng = np.random.default_rng(seed)
    group = rng.choice(3, n, p=KNOWN["shares"])
    b = np.array([KNOWN["b0"], KNOWN["b1"], KNOWN_B2]).T[group]  # (n, 3)
    mean = b[:, [0]] + b[:, [1]] * MONTHS + b[:, [2]] * MONTHS**2
    nprs = mean + rng.normal(0, 1, (n, 13))
    last = np.minimum(rng.geometric(0.08, n) - 1, 12)
    seen = (MONTHS <= last[:, None]) & ((rng.random((n, 13)) > 0.1) | (MONTHS == 0))
    i, m = np.nonzero(seen)
    frame = pl.DataFrame({"patient_key": [f"p{k:04d}" for k in i], "month": m, "nprs": nprs[i, m]})
    return frame, group


def test_fit_mixture_with_one_group_is_ordinary_least_squares():
    """K = 1: coefficients = OLS on all visits, sigma^2 = RSS/N, SEs = OLS SEs (ML scale)."""
    frame, _ = _known_mixture(80)
    data = trajectory_data(frame)
    fit = fit_mixture(data.y, data.mask, data.design, 1, n_starts=1, seed=0)
    rows, cols = np.nonzero(data.mask)
    ols = sm.OLS(data.y[rows, cols], data.design[cols]).fit()
    n, p = len(rows), data.design.shape[1]
    assert fit.betas[0] == pytest.approx(ols.params, rel=1e-6)
    assert fit.sigma**2 == pytest.approx(ols.ssr / n, rel=1e-6)
    cov = parameter_covariance(fit, data.y, data.mask, data.design)
    ml_se = ols.bse * np.sqrt((n - p) / n)
    assert np.sqrt(np.diag(cov)[:p]) == pytest.approx(ml_se, rel=1e-3)


@pytest.fixture(scope="module")
def known_result():
    frame, group = _known_mixture()
    return fit_trajectories(frame, seed=1, n_starts=3, max_groups=4), group


def test_fit_trajectories_selects_and_recovers_a_known_three_group_mixture(known_result):
    """BIC picks 3 of 1-4 groups; shares and curves match the truth within their CIs.

    (A 60-replicate check of these CIs on this design gave 88-98% pointwise coverage.)
    """
    result, group = known_result
    assert result.chosen == 3
    groups = result.groups.filter("selected")
    realised = np.bincount(group) / len(group)
    assert groups["share"].to_numpy() == pytest.approx(realised, abs=0.03)
    assert groups["app"].min() > 0.9
    truth = np.array(KNOWN["b0"])[:, None] + np.array(KNOWN["b1"])[:, None] * MONTHS
    truth = truth + np.array(KNOWN_B2)[:, None] * MONTHS**2
    curves = result.trajectories.filter("selected").sort("group", "month")
    estimate = curves["estimate"].to_numpy().reshape(3, 13)
    z = (estimate - truth) / curves["std_error"].to_numpy().reshape(3, 13)
    assert (np.abs(z) < 1.96).mean() > 0.8  # 95% CIs: 39 pointwise, correlated checks
    assert np.abs(z).max() < 3.5


def test_fit_trajectories_membership_is_a_probability_per_patient(known_result):
    result, _ = known_result
    membership = result.membership
    sums = membership.group_by("patient_key").agg(pl.col("posterior_probability").sum())
    assert sums["posterior_probability"].to_numpy() == pytest.approx(1.0)
    assert membership.filter("assigned").height == sums.height == 300
    table = result.selection
    assert table.filter("selected").height == 1
    assert (
        table["bic"].arg_min() == 2 or not table.row(table["bic"].arg_min(), named=True)["adequate"]
    )


def test_fit_trajectories_is_reproducible_with_a_seed():
    frame, _ = _known_mixture(120, seed=3)
    a = fit_trajectories(frame, seed=5, n_starts=2, max_groups=3)
    b = fit_trajectories(frame, seed=5, n_starts=2, max_groups=3)
    assert a.selection.equals(b.selection) and a.trajectories.equals(b.trajectories)


def test_select_model_prefers_an_adequate_model_over_a_lower_bic():
    table = pl.DataFrame(
        {
            "n_groups": [1, 2, 3, 4],
            "bic": [100.0, 90.0, 80.0, 70.0],
            "min_app": [1.0, 0.9, 0.95, 0.6],  # 4 groups: a group with APP < 0.7
            "min_share": [1.0, 0.3, 0.04, 0.1],  # 3 groups: a group under 5%
        }
    )
    selected = select_model(table)
    assert selected["adequate"].to_list() == [True, True, False, False]
    assert selected.filter("selected")["n_groups"].item() == 2


def test_fit_mixture_finds_the_simulators_latent_groups(study_views):
    """Three groups on the simulated cohort: ordered mild < moderate < severe, mostly agree.

    The simulator adds random intercepts and slopes within groups, which LCGA does not
    model, so agreement is imperfect (about 2 in 3 to 3 in 4 patients) and the severe
    group's intercept is biased upwards.
    """
    views, cohort = study_views
    data = trajectory_data(views["analysis_patient_months"])
    fit = fit_mixture(data.y, data.mask, data.design, 3, n_starts=3, seed=2)
    latent = cohort.latent.sort("patient_id")
    assert latent["patient_id"].to_list() == data.patient_keys
    truth = latent["group"].replace_strict({"mild": 0, "moderate": 1, "severe": 2}).to_numpy()
    assert (fit.posterior.argmax(axis=1) == truth).mean() > 0.6  # 0.65-0.74 over 7 seeds
    assert fit.betas[:2, 0] == pytest.approx([4.4, 6.6], abs=0.5)
    assert 8.0 < fit.betas[2, 0] < 9.0  # the top group sits high (8.2-8.7 over 7 seeds)


def test_fit_trajectories_describes_every_number_of_groups(known_result):
    """Groups and curves of every model (1-4 here), the selected one marked."""
    result, _ = known_result
    sizes = result.groups.group_by("n_groups").agg(pl.len(), pl.col("share").sum())
    assert sorted(sizes.rows()) == [(k, k, pytest.approx(1.0)) for k in range(1, 5)]
    assert result.trajectories.height == 13 * (1 + 2 + 3 + 4)
    assert result.groups.filter("selected")["n_groups"].unique().to_list() == [3]


def test_fit_trajectories_survives_more_groups_than_the_data_support():
    """Eight patients, up to five groups: degenerate models are fitted, not selected."""
    frame, _ = _known_mixture(8, seed=4)
    result = fit_trajectories(frame, seed=0, n_starts=2)
    assert result.selection.height == 5
    chosen = result.selection.filter("selected").row(0, named=True)
    assert chosen["adequate"] and chosen["n_groups"] == result.chosen
    assert result.membership["patient_key"].n_unique() == 8


def test_fit_trajectories_selects_the_simulators_three_groups_without_within_group_spread():
    """With the simulator's within-group random effects off, BIC picks its 3 groups.

    Shares match the realised latent shares and the fitted curves the true lines
    (intercept + slope x month) within their CIs. With the spread on (as in the default
    simulation), LCGA needs extra groups to absorb it and BIC keeps adding them.
    """
    views, cohort = simulated_views(
        329, 20230516, intercept_sd=0.0, slope_sd=0.0, no_depression_extra_slope=0.0
    )
    result = fit_trajectories(views["analysis_patient_months"], seed=1, n_starts=3, max_groups=4)
    assert result.chosen == 3
    realised = cohort.truth()["realised_group_shares"]
    shares = result.groups.filter("selected")["share"].to_list()
    assert shares == pytest.approx([realised[g] for g in ("mild", "moderate", "severe")], abs=0.03)
    groups = cohort.parameters.groups
    truth = np.array([[g.intercept + g.slope * m for m in MONTHS] for g in groups])
    curves = result.trajectories.filter("selected").sort("group", "month")
    estimate, se = (curves[c].to_numpy().reshape(3, 13) for c in ("estimate", "std_error"))
    assert np.abs((estimate - truth) / se).max() < 3


def test_a_large_cohort_is_fitted_on_a_seeded_sample_and_every_patient_is_classified():
    """Beyond max_patients the EM sees a seeded sample (its fit is that of the sample
    alone); every patient gets posteriors, and the known groups are still recovered."""
    frame, truth = _known_mixture(n=600, seed=3)
    result = fit_trajectories(frame, seed=5, n_starts=4, max_groups=3, max_patients=250)
    again = fit_trajectories(frame, seed=5, n_starts=4, max_groups=3, max_patients=250)
    assert result.selection.equals(again.selection)
    selection = result.selection.row(2, named=True)
    assert (selection["n_patients"], selection["n_patients_cohort"]) == (250, 600)
    membership = result.membership
    assert membership["patient_key"].n_unique() == 600
    totals = membership.group_by("patient_key").agg(pl.col("posterior_probability").sum())
    assert totals["posterior_probability"].to_list() == pytest.approx([1.0] * 600)

    data = trajectory_data(frame)
    sample = np.sort(np.random.default_rng([5, 600]).choice(600, 250, replace=False))
    alone = fit_mixture(data.y[sample], data.mask[sample], data.design, 3, n_starts=4, seed=5)
    assert selection["log_likelihood"] == pytest.approx(alone.log_likelihood, rel=1e-12)
    assigned = membership.filter("assigned").sort("patient_key")["group"].to_numpy() - 1
    assert (assigned == truth).mean() > 0.9  # groups ordered by mean level, as KNOWN


def test_fit_mixture_refuses_no_starts():
    """Without a single EM start there is no fit to return: a clear error, not a crash."""
    design = np.vander(np.arange(3) / 2, 2, increasing=True)
    with pytest.raises(ValueError, match="n_starts"):
        fit_mixture(np.ones((4, 3)), np.ones((4, 3)), design, 1, n_starts=0, seed=1)

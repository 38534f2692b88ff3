"""Pain trajectories: the selection rule, recovery of the simulator's groups, the tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from models.analysis import Options
from models.headline import secondary_block
from models.suite import StudyResults
from models.trajectory import (
    MONTHS,
    fit_trajectories,
    select,
    specification,
    trajectory_data,
    validation_rows,
)
from models.trajectory_tables import adjusted_rand_index
from tests.models.conftest import simulated_views


def _rows(bic: list[float], min_app: list[float], min_share: list[float]) -> pl.DataFrame:
    table = pl.DataFrame(
        {"n_groups": range(1, len(bic) + 1), "bic": bic, "min_app": min_app, "min_share": min_share}
    )
    return table.with_columns(adequate=(pl.col("min_app") >= 0.7) & (pl.col("min_share") >= 0.05))


def test_select_takes_the_lowest_bic_when_it_is_adequate():
    table = _rows([100.0, 90.0, 80.0, 85.0, 88.0], [1.0] * 5, [1.0, 0.4, 0.2, 0.1, 0.1])
    assert select(table) == (3, "selected: lowest BIC, adequate")


def test_select_says_not_determined_when_bic_is_lowest_at_the_largest_k():
    """BIC still falling at the largest K tried: no number of groups is chosen."""
    table = _rows([100.0, 90.0, 80.0, 70.0], [1.0] * 4, [1.0, 0.4, 0.2, 0.1])
    assert select(table) == (0, "not determined within K <= 4: BIC still falling")


def test_select_falls_back_to_the_best_adequate_model_and_says_why():
    """The lowest BIC has a group under 5%: the adequate model with the lowest BIC."""
    table = _rows(
        [100.0, 90.0, 80.0, 75.0, 78.0, 79.0], [1.0] * 6, [1.0, 0.4, 0.2, 0.03, 0.02, 0.01]
    )
    chosen, status = select(table)
    assert chosen == 3 and status.startswith("selected among adequate models")
    assert "lowest BIC (4 groups)" in status


@pytest.mark.parametrize("seed", [1, 2])
def test_the_growth_mixture_model_recovers_the_simulators_three_groups(seed):
    """800 patients of the default design: 3 groups, ARI >= 0.6, shares near the truth,
    curves within a few SEs of the true courses (bench/trajectory.py: 10 of 10 at 2,000)."""
    views, cohort = simulated_views(800, seed)
    result = fit_trajectories(views["analysis_patient_months"], seed=seed, n_starts=5)
    assert (result.chosen, result.status) == (3, "selected: lowest BIC, adequate")
    latent = cohort.latent.select(pl.col("patient_id").alias("patient_key"), "group")
    assigned = result.membership.filter("assigned").join(latent, on="patient_key")
    assert (
        adjusted_rand_index(assigned["group"].to_numpy(), assigned["group_right"].to_numpy()) >= 0.6
    )
    realised = cohort.truth()["realised_group_shares"]
    shares = result.groups.filter("selected")["share"].to_list()
    assert shares == pytest.approx([realised[g] for g in ("mild", "moderate", "severe")], abs=0.04)
    # A group's mean course: its line, plus the steeper decline of its patients without
    # depressive symptoms (drawn independently of the group).
    p, depressed = cohort.parameters, cohort.truth()["share_depressed"]
    extra = (1 - depressed) * p.no_depression_extra_slope
    truth = np.array([g.intercept + (g.slope + extra) * MONTHS for g in p.groups])
    curves = result.trajectories.filter("selected").sort("group", "month")
    estimate, se = (curves[c].to_numpy().reshape(3, 13) for c in ("estimate", "std_error"))
    assert np.abs((estimate - truth) / se).max() < 3.5


@pytest.fixture(scope="module")
def study_result(study_views):
    """The published cohort's size (329 patients) and seed: what the demo fits."""
    views, cohort = study_views
    return fit_trajectories(views["analysis_patient_months"], seed=20230516, n_starts=5), cohort


def test_the_demo_cohort_recovers_three_groups_near_the_papers_shares(study_result):
    """The paper's 16.0/35.3/45.7% (rescaled to 100%: 16.5/36.4/47.1%) within 5 points."""
    result, _ = study_result
    assert result.chosen == 3
    shares = result.groups.filter("selected")["share"].to_list()
    assert shares == pytest.approx([0.165, 0.364, 0.471], abs=0.05)
    gmm = result.selection.filter(pl.col("model") == "gmm").sort("n_groups")
    assert gmm["bic"].arg_min() == 2 and gmm.height == 5  # stopped two past the minimum


def test_lcga_keeps_adding_groups_on_the_same_cohort_and_says_so(study_result):
    """LCGA has no spread within groups: its BIC falls up to the largest K tried, and its
    status says the number of groups is not determined (none of its models is selected)."""
    result, _ = study_result
    lcga = result.selection.filter(pl.col("model") == "lcga").sort("n_groups")
    assert lcga["n_groups"].to_list() == [1, 2, 3, 4, 5, 6]
    assert (lcga["bic"].diff().drop_nulls() < 0).all()
    assert lcga["status"].unique().to_list() == ["not determined within K <= 6: BIC still falling"]
    assert not lcga["selected"].any()
    assert result.groups.filter("selected")["model"].unique().to_list() == ["gmm"]


def test_the_growth_mixture_model_puts_the_within_group_spread_in_its_random_effects(
    study_result,
):
    """Its random-effect SDs are the simulator's (0.5 intercept, 0.03/month slope) within
    sampling error, and its residual SD is the simulator's 0.8 plus rounding."""
    result, cohort = study_result
    chosen = result.selection.filter("selected").row(0, named=True)
    p = cohort.parameters
    assert chosen["random_intercept_sd"] == pytest.approx(p.intercept_sd, abs=0.15)
    assert chosen["random_slope_sd_per_month"] == pytest.approx(p.slope_sd, abs=0.02)
    assert chosen["residual_sd"] == pytest.approx(np.hypot(p.residual_sd, 12**-0.5), abs=0.05)
    assert chosen["entropy"] > 0.7 and chosen["min_app"] > 0.8


def test_an_undetermined_number_of_groups_selects_nothing(study_views):
    """Up to two groups on three: BIC lowest at the largest K, nothing selected, no
    memberships published (rather than the largest model's)."""
    views, _ = study_views
    result = fit_trajectories(views["analysis_patient_months"], seed=1, n_starts=3, max_groups=2)
    assert (result.chosen, result.status) == (0, "not determined within K <= 2: BIC still falling")
    assert not result.groups["selected"].any() and result.membership.is_empty()
    assert result.membership.columns == [
        "patient_key",
        "group",
        "posterior_probability",
        "assigned",
    ]


def test_membership_is_a_probability_per_patient(study_result):
    result, cohort = study_result
    membership = result.membership
    totals = membership.group_by("patient_key").agg(pl.col("posterior_probability").sum())
    assert totals["posterior_probability"].to_numpy() == pytest.approx(1.0)
    assert membership.filter("assigned").height == totals.height == cohort.patients.height


def test_the_tables_describe_every_model_fitted(study_result):
    result, _ = study_result
    per_model = result.groups.group_by("model", "n_groups").agg(pl.len(), pl.col("share").sum())
    assert all(row[1] == row[2] for row in per_model.rows())
    assert per_model["share"].to_numpy() == pytest.approx(1.0)
    assert result.trajectories.height == 13 * per_model["len"].sum()
    assert result.selection.filter("selected").height == 1


def test_a_large_cohort_is_fitted_on_a_seeded_sample_and_every_patient_is_classified():
    """Beyond max_patients the models see a seeded sample (the fit is that sample's
    alone); every patient gets posteriors under the selected model."""
    views, _ = simulated_views(600, 3)
    months = views["analysis_patient_months"]
    result = fit_trajectories(months, seed=5, n_starts=3, max_patients=250)
    again = fit_trajectories(months, seed=5, n_starts=3, max_patients=250)
    assert result.selection.equals(again.selection)
    assert result.selection["n_patients"].unique().to_list() == [250]
    assert result.selection["n_patients_cohort"].unique().to_list() == [600]
    assert result.membership["patient_key"].n_unique() == 600
    keys = trajectory_data(months).patient_keys
    sample = np.sort(np.random.default_rng([5, 600]).choice(600, 250, replace=False))
    alone = fit_trajectories(
        months.filter(pl.col("patient_key").is_in(keys.gather(sample).implode())),
        seed=5,
        n_starts=3,
    )
    fitted = result.selection.select("model", "n_groups", "log_likelihood")
    assert alone.selection.select("model", "n_groups").equals(fitted.drop("log_likelihood"))
    assert alone.selection["log_likelihood"].to_list() == pytest.approx(
        fitted["log_likelihood"].to_list(), rel=1e-9
    )


def test_fit_trajectories_survives_more_groups_than_the_data_support():
    """Eight patients: degenerate models are fitted, and the choice is an adequate one."""
    views, _ = simulated_views(8, 4, n_centres=4)
    result = fit_trajectories(views["analysis_patient_months"], seed=0, n_starts=2)
    chosen = result.selection.filter("selected")
    assert chosen.height == 1 and chosen["adequate"].item()
    assert result.membership["patient_key"].n_unique() == 8


def test_a_month_recorded_twice_is_refused_in_one_line():
    months = pl.DataFrame(
        {"patient_key": ["a", "a", "b", "b"], "month": [0, 0, 1, 2], "nprs": [5, 6, 7, 8]}
    )
    with pytest.raises(ValueError, match="1 patients have a month recorded twice"):
        trajectory_data(months)


def test_too_few_distinct_months_are_refused_in_one_line():
    """Everyone seen at inclusion only: no quadratic course can be fitted; say why."""
    months = pl.DataFrame({"patient_key": ["a", "b", "c"], "month": [0, 0, 0], "nprs": [5, 6, 7]})
    with pytest.raises(ValueError, match="NPRS observed at 1 distinct months"):
        fit_trajectories(months, seed=1)


def test_the_specification_states_the_rule_and_the_undetermined_case():
    spec = specification(Options(seed=3, n_rep=1, n_starts=4))["trajectory"]
    assert "lowest BIC" in spec["selection_rule"] and "not determined" in spec["selection_rule"]
    assert spec["seed"] == 3 and "up to 4 starts" in spec["estimation"]


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ([0, 0, 1, 1], [1, 1, 0, 0], 1.0),  # the same partition, other labels
        ([0, 0, 1, 1], [0, 0, 1, 2], 0.5714285714285715),  # sklearn's documented example
        ([0, 0, 0, 0], [0, 1, 2, 3], 0.0),
        ([0, 0, 1, 1], [0, 1, 0, 1], -0.5),
    ],
)
def test_adjusted_rand_index_matches_known_values(a, b, expected):
    assert adjusted_rand_index(np.array(a), np.array(b)) == pytest.approx(expected)


def test_the_headline_says_when_the_number_of_groups_is_not_determined():
    """No groups selected: the console and Prefect headline give the status instead."""
    status = "not determined within K <= 6: BIC still falling"
    study = StudyResults(
        primary=None,  # type: ignore[arg-type]  # the secondary block does not read it
        effect_size={},
        interaction={},
        trajectory_groups=0,
        trajectory_shares=[],
        mediation={},
        sf12={},
        fit_seconds={},
        failed={},
        manifest=Path("manifest.json"),
        trajectory_status=status,
    )
    assert secondary_block(study).rows == [("pain trajectories (BIC)", status)]


def test_validation_rows_compare_with_r_and_recover_the_stored_cohorts_groups():
    """docs/validation.md's trajectory rows: on the stored 300 patients (independent of
    later simulator changes) flexmix's likelihoods are reproduced and 3 groups found."""
    rows = validation_rows()
    at_flexmix = [r for r in rows if r.startswith("| LCGA") and "flexmix's estimates" in r]
    assert len(at_flexmix) == 4
    for row in at_flexmix:
        ours, theirs = row.split("|")[3:5]
        assert float(ours) == pytest.approx(float(theirs), abs=1e-6)
    assert any(r.startswith("| GMM, selected | number of groups; status | 3;") for r in rows)

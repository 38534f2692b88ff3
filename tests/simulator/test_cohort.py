"""The simulator: reproducible, shaped like the published cohort, truth recorded."""

from __future__ import annotations

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from simulator.cohort import SimulationParameters, simulate_cohort


@pytest.fixture(scope="module")
def cohort():
    return simulate_cohort()


def test_simulate_cohort_is_reproducible_from_its_seed():
    a = simulate_cohort(SimulationParameters(n_patients=40, n_centres=8, seed=5))
    b = simulate_cohort(SimulationParameters(n_patients=40, n_centres=8, seed=5))
    c = simulate_cohort(SimulationParameters(n_patients=40, n_centres=8, seed=6))
    assert_frame_equal(a.follow_ups, b.follow_ups)
    assert not a.follow_ups.equals(c.follow_ups)


def test_simulate_cohort_matches_the_published_description(cohort):
    """329 patients in 30 unequal centres, ~76% women, age ~51 (11), NPRS ~6.8 at baseline."""
    patients = cohort.patients
    assert patients.height == 329
    sizes = patients.group_by("centre_id").len()["len"]
    assert sizes.len() == 30 and sizes.min() >= 2 and sizes.max() >= 4 * sizes.min()
    assert 0.70 < (patients["sex"] == "F").mean() < 0.81
    assert 49 < patients["age"].mean() < 54 and 9 < patients["age"].std() < 13
    baseline = cohort.follow_ups.filter(month=0)["nprs"]
    assert 6.4 < baseline.mean() < 7.2 and 1.5 < baseline.std() < 2.2
    assert cohort.follow_ups["nprs"].is_between(0, 10).all()


def test_simulate_cohort_has_heavy_dropout(cohort):
    """About a third of patients still answer at month 12 (companion paper)."""
    answering = cohort.follow_ups.filter(month=12)["patient_id"].n_unique() / 329
    assert 0.22 < answering < 0.45
    assert cohort.follow_ups.filter(month=0).height == 329


def test_simulate_cohort_records_truth(cohort):
    truth = cohort.truth()
    shares = truth["realised_group_shares"]
    assert set(shares) == {"mild", "moderate", "severe"}
    assert 0.38 < shares["severe"] < 0.55 and 0.10 < shares["mild"] < 0.23
    assert truth["parameters"]["seed"] == 20230516
    assert -0.10 < truth["expected_slope"] < -0.06
    # patients without depressive symptoms decline faster, by construction
    latent = cohort.latent
    gap = latent.group_by("depressed").agg(pl.col("slope").mean()).sort("depressed")["slope"]
    assert gap[0] < gap[1]


def test_simulate_cohort_draws_every_form(cohort):
    assert cohort.hads.filter(month=0).height == 329
    assert cohort.hads.select(pl.col("^hads_.*$")).to_numpy().max() <= 3
    assert set(cohort.sf12["month"].unique()) == {0, 12}
    assert cohort.ketamine["dose_mg"].min() > 0
    with_ae = cohort.adverse_events["patient_id"].n_unique() / 329
    assert 0.3 < with_ae < 0.7

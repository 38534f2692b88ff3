"""Simulated cohorts turned into the analysis views the models read."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from simulator.cohort import SimulatedCohort, SimulationParameters, simulate_cohort
from transforms.derived.views import build_views


def simulated_views(n_patients: int, seed: int, **extra) -> tuple[dict, SimulatedCohort]:
    """build_views() of a simulated cohort, plus its adverse_events table, and the cohort."""
    cohort = simulate_cohort(SimulationParameters(n_patients=n_patients, seed=seed, **extra))
    tables = cohort.as_tables()
    views = build_views(tables) | {"adverse_events": tables["adverse_events"]}
    return views, cohort


@pytest.fixture(scope="session")
def study_views() -> tuple[dict, SimulatedCohort]:
    """The published cohort's size (329 patients, 30 centres), the project's seed."""
    return simulated_views(329, 20230516)


def months_with_centre_effect(centre_sd: float) -> pl.DataFrame:
    """analysis_patient_months of 300 simulated patients (30 centres), each centre's NPRS
    shifted by a draw of N(0, centre_sd^2) (the simulator has no centre effect)."""
    views, _ = simulated_views(300, 8)
    months = views["analysis_patient_months"]
    centres = months["centre_id"].unique().sort()
    shift = np.random.default_rng(1).normal(0, centre_sd, centres.len())
    offsets = pl.DataFrame({"centre_id": centres, "offset": shift})
    return months.join(offsets, on="centre_id").with_columns(pl.col("nprs") + pl.col("offset"))

"""Write the simulated data that the R reference scripts fit (tests/data), once.

Run from the repository root: ``.venv/bin/python scripts/r/make_reference_data.py``, then
the R scripts (scripts/r/README.md). The data come from the simulator with fixed seeds;
the parameters that made them are kept beside them (``reference_truth.json``) so that
the tests and docs/validation.md can compare each estimate with the simulator's truth.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl

from simulator.calibration import cohort_views
from simulator.cohort import SimulationParameters, simulate_cohort

DATA = Path(__file__).resolve().parents[2] / "tests" / "data"
LMM_COLUMNS = ("patient_key", "centre_id", "month", "nprs", "depressed")
MEDIATION_COLUMNS = (
    "patient_key",
    "nprs_baseline",
    "nprs_one_year",
    "nprs_change",
    "total_dose_mg",
    "hads_d_baseline",
    "age",
    "sex",
)


def views(n_patients: int, seed: int, **extra) -> tuple[dict, dict]:
    cohort = simulate_cohort(SimulationParameters(n_patients=n_patients, seed=seed, **extra))
    return cohort_views(cohort), cohort.truth()


def with_centre_effect(months: pl.DataFrame, sd: float, seed: int) -> pl.DataFrame:
    """NPRS shifted per centre by a draw of N(0, sd^2) (the simulator has no centre effect)."""
    centres = months["centre_id"].unique().sort()
    shift = np.random.default_rng(seed).normal(0, sd, centres.len())
    offsets = pl.DataFrame({"centre_id": centres, "offset": shift})
    return (
        months.join(offsets, on="centre_id")
        .with_columns(pl.col("nprs") + pl.col("offset"))
        .drop("offset")
    )


def main() -> None:
    study, study_truth = views(329, 20230516)
    months = study["analysis_patient_months"].select(LMM_COLUMNS).drop_nulls()
    months = months.with_columns(pl.col("depressed").cast(pl.Int8))
    months.write_csv(DATA / "lmm_cohort.csv")
    with_centre_effect(months, 1.0, seed=1).write_csv(DATA / "lmm_centre_effect.csv")
    small, small_truth = views(300, 2)  # its centre variance is estimated at 0: singular
    small_months = small["analysis_patient_months"].select(LMM_COLUMNS).drop_nulls()
    small_months.with_columns(pl.col("depressed").cast(pl.Int8)).write_csv(
        DATA / "lmm_centre_none.csv"
    )
    larger, larger_truth = views(1000, 7)
    larger["analysis_patients"].select(MEDIATION_COLUMNS).write_csv(DATA / "mediation_cohort.csv")
    truth = {
        "lmm_cohort.csv": study_truth,
        "lmm_centre_effect.csv": {"centre_sd": 1.0, "seed": 1, "base": "lmm_cohort.csv"},
        "lmm_centre_none.csv": small_truth,
        "mediation_cohort.csv": larger_truth,
    }
    text = json.dumps(truth, indent=2, default=str)
    (DATA / "reference_truth.json").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()

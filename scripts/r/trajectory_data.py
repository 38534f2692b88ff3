"""Write the patient-months that scripts/r/trajectory_reference.R fits (tests/data), once.

Run from the repository root: ``.venv/bin/python scripts/r/trajectory_data.py``, then
``Rscript scripts/r/trajectory_reference.R``. A cohort of 300 patients from the simulator
(seed 7, its default design): integer NPRS, missed calls and dropout as in the study; its
latent group is kept as the truth. The file is what the tests read: later changes to the
simulator leave the reference untouched.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from simulator.cohort import SimulationParameters, simulate_cohort

DATA = Path(__file__).resolve().parents[2] / "tests" / "data"
PATIENTS, SEED = 300, 7


def main() -> None:
    cohort = simulate_cohort(SimulationParameters(n_patients=PATIENTS, seed=SEED))
    latent = cohort.latent.select("patient_id", "group")
    visits = (
        cohort.follow_ups.join(latent, on="patient_id")
        .select(pl.col("patient_id").alias("patient_key"), "month", "nprs", "group")
        .sort("patient_key", "month")
    )
    visits.write_csv(DATA / "trajectory_visits.csv")
    print(f"{visits.height} patient-months of {PATIENTS} patients -> trajectory_visits.csv")


if __name__ == "__main__":
    main()

"""Simulate a cohort into a workspace: exports in the inbox, mappings, and the truth."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from cohortflow import progress
from simulator.cohort import SimulatedCohort, SimulationParameters, simulate_cohort
from simulator.exports import STYLE_ORDER, write_centre_exports


def simulate_into_workspace(
    workspace: Path,
    *,
    n_patients: int = 329,
    n_centres: int = 30,
    seed: int = 20230516,
    fault_rate: float = 0.02,
    styles: Sequence[str] = STYLE_ORDER,
) -> tuple[SimulatedCohort, pl.DataFrame]:
    """Write exports to ``inbox/``, mappings to ``centres/``, truth to ``simulation/``.

    ``simulation/`` holds what no real centre would send: the parameters, the latent
    groups and the faults injected, so that tests and the demo can check the pipeline
    against the truth. It holds simulated local ids only.
    """
    with progress.step(f"Simulating {n_patients:,} patients"):
        cohort = simulate_cohort(
            SimulationParameters(n_patients=n_patients, n_centres=n_centres, seed=seed)
        )
    faults = write_centre_exports(cohort, workspace, fault_rate=fault_rate, styles=styles)
    out = workspace / "simulation"
    out.mkdir(parents=True, exist_ok=True)
    (out / "truth.json").write_text(json.dumps(cohort.truth(), indent=2), encoding="utf-8")
    faults.write_csv(out / "faults.csv")
    cohort.latent.write_parquet(out / "latent.parquet")
    return cohort, faults

"""Benchmark: the primary mixed model by the fast engine against statsmodels MixedLM.

Run from the repository root: ``.venv/bin/python -m bench.lmm`` (sizes and the
statsmodels time budget are options). Data: the cohort simulator's follow-ups (the
primary model's own input), so rows per patient, dropout and missed calls are the study's.
For each size it prints rows, the fast fit's time (median of 3), statsmodels' default
fit time (``engine="statsmodels"``, skipped with its estimate when the time per patient
measured at the previous size predicts more than the budget), the largest relative
difference of the estimates (fixed effects, their SEs, the four variance components),
the log-likelihood gain of the fast fit, the same difference against MixedLM run to its
optimum (sizes up to ``--tight-max``), and the fast fit's peak traced memory.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time
import tracemalloc

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf

from models.mixed import GrowthModelFit, fit_growth_model
from models.mixed.reference import fit_quietly, growth_model_fit
from simulator.cohort import SimulationParameters, simulate_cohort


def fit_fast(data: pd.DataFrame) -> GrowthModelFit:
    """The primary model by the fast engine (the default)."""
    return fit_growth_model(data, outcome="nprs", time="month", group="patient_id", time_scale=12)


def fit_statsmodels(data: pd.DataFrame) -> GrowthModelFit:
    """The primary model by statsmodels MixedLM with its default optimiser."""
    return fit_growth_model(
        data,
        outcome="nprs",
        time="month",
        group="patient_id",
        time_scale=12,
        engine="statsmodels",
    )


def rows_for(n_patients: int, seed: int = 20230516) -> pd.DataFrame:
    cohort = simulate_cohort(SimulationParameters(n_patients=n_patients, seed=seed))
    return cohort.follow_ups.select("patient_id", "month", "nprs").to_pandas()


def timed(fit, data: pd.DataFrame) -> tuple[float, GrowthModelFit]:
    start = time.perf_counter()
    result = fit(data)
    return time.perf_counter() - start, result


def peak_traced_mb(data: pd.DataFrame) -> float:
    """Peak Python/numpy allocation during one fast fit (tracemalloc, run apart from timing)."""
    tracemalloc.start()
    fit_fast(data)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def estimates(fit: GrowthModelFit) -> np.ndarray:
    fixed = fit.fixed_effects.select("estimate", "std_error").to_numpy().ravel()
    return np.concatenate([fixed, fit.variance_components["estimate"].to_numpy()])


def tight_statsmodels_rel(data: pd.DataFrame, fast: GrowthModelFit) -> str:
    """Max relative difference from MixedLM run to its optimum (BFGS, gtol 1e-10).

    statsmodels' default stops 1e-5..1e-4 short in the variance components; this shows
    that the remaining difference is its optimiser's, not the fast fit's.
    """
    scaled = data.assign(month=data["month"] / 12)
    model = smf.mixedlm("nprs ~ month", scaled, groups=scaled["patient_id"], re_formula="~month")
    result, converged = fit_quietly(model, reml=True, method="bfgs", gtol=1e-10, maxiter=500)
    reference = growth_model_fit(result, time="month", time_scale=12, converged=converged)
    return f"{np.max(np.abs(estimates(fast) / estimates(reference) - 1)):.1e}"


def compare(fast: GrowthModelFit, reference: GrowthModelFit | None) -> tuple[str, str]:
    """Max relative difference of the estimates, and llf(fast) - llf(statsmodels)."""
    if reference is None:
        return "-", "-"
    rel = np.max(np.abs(estimates(fast) / estimates(reference) - 1))
    return f"{rel:.1e}", f"{fast.log_likelihood - reference.log_likelihood:+.1e}"


def bench_size(
    n_patients: int, per_patient: float | None, budget: float, tight_max: int
) -> tuple[list, float | None]:
    """One row of the table; returns it and statsmodels' measured seconds per patient."""
    data = rows_for(n_patients)
    times, fast = zip(*(timed(fit_fast, data) for _ in range(3)), strict=True)
    estimate = None if per_patient is None else per_patient * n_patients
    if estimate is not None and estimate > budget:
        sm_cell, reference = f"skipped (est. {estimate:.0f} s)", None
    else:
        sm_seconds, reference = timed(fit_statsmodels, data)
        sm_cell, per_patient = f"{sm_seconds:.2f}", sm_seconds / n_patients
    rel, gain = compare(fast[0], reference)
    tight = tight_statsmodels_rel(data, fast[0]) if n_patients <= tight_max else "-"
    row = [n_patients, len(data), f"{statistics.median(times):.3f}", sm_cell, rel, gain, tight]
    return row + [f"{peak_traced_mb(data):.1f}", fast[0].converged], per_patient


HEADER = ["patients", "rows", "fast s", "statsmodels s", "max rel diff", "llf gain"]
HEADER += ["rel diff (sm to optimum)", "fast peak MB", "converged"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[329, 20_000, 200_000])
    parser.add_argument("--statsmodels-budget", type=float, default=180.0, help="seconds")
    parser.add_argument(
        "--tight-max", type=int, default=2_500, help="patients; see tight_statsmodels_rel"
    )
    args = parser.parse_args(argv)
    print(f"cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}")
    print(" | ".join(HEADER))
    per_patient = None
    for n in args.sizes:
        row, per_patient = bench_size(n, per_patient, args.statsmodels_budget, args.tight_max)
        print(" | ".join(str(cell) for cell in row), flush=True)
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"process max RSS: {maxrss:.0f} MB (simulated cohorts included)")


if __name__ == "__main__":
    main()

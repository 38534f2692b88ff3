"""Benchmark: the trajectory analysis's recovery of the simulator's groups, and its speed.

    python -m bench.trajectory recovery [--patients 2000] [--seeds 10] [--starts 20]
    python -m bench.trajectory speed [--sizes 100000 1000000] [--starts 20]

``recovery`` simulates one cohort per seed (the simulator's default design: three
groups, random intercept and slope within each) and runs ``models.trajectory`` on its
patient-months, as the nightly fit does. Per seed it prints the number of groups
selected, its status, the adjusted Rand index (ARI) of the modal assignments against the
simulated groups, the estimated shares and the seconds taken; then how many seeds
picked the true number of groups with ARI >= 0.6 (the issue's criterion: 8 of 10).

``speed`` times the whole analysis (``models.trajectory.fit``: the views' patient-months
in, the four published tables out) at each size, wall and CPU, with the selection it
made. The cohorts come from the simulator (about 90 s to draw a million patients, not
timed).

Prints tables; nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import resource
import time

import numpy as np
import polars as pl

from models.analysis import Options
from models.trajectory import NAME, fit, fit_trajectories
from models.trajectory_tables import adjusted_rand_index
from simulator.cohort import SimulationParameters, simulate_cohort

TRUE_GROUPS = 3


def patient_months(n_patients: int, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The simulator's follow-ups as the fit reads them, and its latent groups."""
    params = SimulationParameters(n_patients=n_patients, seed=seed, n_centres=30)
    cohort = simulate_cohort(params)
    months = cohort.follow_ups.select(pl.col("patient_id").alias("patient_key"), "month", "nprs")
    return months, cohort.latent.select(pl.col("patient_id").alias("patient_key"), "group")


def recovery_row(n_patients: int, seed: int, n_starts: int) -> dict:
    """One seed: the selection and its agreement with the simulated groups."""
    months, latent = patient_months(n_patients, seed)
    start = time.perf_counter()
    result = fit_trajectories(months, seed=seed, n_starts=n_starts)
    seconds = time.perf_counter() - start
    ari = None
    if result.chosen:
        assigned = result.membership.filter("assigned").join(latent, on="patient_key")
        ari = adjusted_rand_index(assigned["group"].to_numpy(), assigned["group_right"].to_numpy())
    shares = result.groups.filter("selected")["share"].to_list()
    return {
        "seed": seed,
        "groups": result.chosen,
        "ari": ari,
        "shares": " / ".join(f"{s:.1%}" for s in shares),
        "status": result.status,
        "seconds": round(seconds, 1),
    }


def recovery(n_patients: int, seeds: int, n_starts: int) -> None:
    rows = []
    for seed in range(1, seeds + 1):
        rows.append(recovery_row(n_patients, seed, n_starts))
        row = rows[-1]
        ari = "-" if row["ari"] is None else f"{row['ari']:.3f}"
        print(
            f"seed {seed:2d}: {row['groups']} groups, ARI {ari}, shares {row['shares']}, "
            f"{row['seconds']} s ({row['status']})",
            flush=True,
        )
    hits = [r for r in rows if r["groups"] == TRUE_GROUPS and (r["ari"] or 0) >= 0.6]
    aris = [r["ari"] for r in rows if r["ari"] is not None]
    print(
        f"{n_patients} patients: true K = {TRUE_GROUPS} with ARI >= 0.6 in {len(hits)} of "
        f"{len(rows)} seeds; ARI {min(aris):.3f}-{max(aris):.3f}; "
        f"median {np.median([r['seconds'] for r in rows]):.1f} s per fit"
    )


def speed(sizes: list[int], n_starts: int) -> None:
    """Wall and CPU seconds of the whole analysis at each size (CPU: this process, all its
    threads; on a machine shared with other work the wall time is the larger)."""
    print("patients | patient-months | simulate s | fit wall s | fit CPU s | load | groups")
    for n in sizes:
        start = time.perf_counter()
        months, _ = patient_months(n, seed=20230516)
        simulated = time.perf_counter() - start
        views = {"analysis_patient_months": months}
        start, cpu = time.perf_counter(), time.process_time()
        fitted = fit(views, Options(seed=20230516, n_rep=0, n_starts=n_starts))
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        result = fitted.result
        print(
            f"{n} | {months.height} | {simulated:.0f} | {seconds:.2f} | {cpu:.2f} | "
            f"{os.getloadavg()[0]:.1f} | {result.chosen} ({result.status})",
            flush=True,
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    rec = sub.add_parser("recovery")
    rec.add_argument("--patients", type=int, default=2000)
    rec.add_argument("--seeds", type=int, default=10)
    rec.add_argument("--starts", type=int, default=20)
    spd = sub.add_parser("speed")
    spd.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    spd.add_argument("--starts", type=int, default=20)
    args = parser.parse_args(argv)
    print(f"{NAME}: cores {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}")
    if args.what == "recovery":
        recovery(args.patients, args.seeds, args.starts)
    else:
        speed(args.sizes, args.starts)
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"process max RSS: {maxrss:.0f} MB")


if __name__ == "__main__":
    main()

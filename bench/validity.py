"""Statistical validity across simulated cohorts (a benchmark, not a test: minutes).

``python -m bench.validity [--cohorts 200]`` draws cohorts of the paper's size (329
patients) from the simulator's defaults and reports:

* mediation: how often the 95% percentile and BCa CIs of the indirect effect cover the
  truth (0: dose is drawn independently of HADS-D), and the same on cohorts with a known
  non-zero indirect effect (a linear design with a = 0.5, b = -0.2 per 100 mg, n = 329);
* the time x depression interaction: mean estimate (truth +0.04), SE, and power (Wald
  p < .05, LRT p < .05 and p <= .002, the paper's);
* SF-12: how often MCS and PCS change with p < .001 and p < .05 (the paper: P < .001, .02).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import polars as pl

from models.descriptives import sf12_change
from models.interaction import fit_interaction_model
from models.mediation import fit_mediation
from simulator.calibration import cohort_views
from simulator.cohort import SimulationParameters, simulate_cohort


def linear_patients(n: int, seed: int) -> pl.DataFrame:
    """A cohort with a known indirect effect a * b = 0.5 * -0.2 = -0.1 per 100 mg."""
    rng = np.random.default_rng(seed)
    dose = rng.gamma(3.0, 150.0, n)
    age, sex = rng.normal(51, 11, n), rng.choice(["F", "M"], n, p=[0.757, 0.243])
    hads = 6 + 0.5 * dose / 100 + rng.normal(0, 3, n)
    change = -1 - 0.2 * hads - 0.1 * dose / 100 + rng.normal(0, 1.5, n)
    return pl.DataFrame(
        {
            "patient_key": [str(i) for i in range(n)],
            "nprs_baseline": 6.0,
            "nprs_one_year": 6.0 + change,
            "nprs_change": change,
            "total_dose_mg": dose,
            "hads_d_baseline": hads,
            "age": age,
            "sex": sex,
        }
    )


def covered(effects: pl.DataFrame, truth: float) -> tuple[bool, bool]:
    row = effects.filter(effect="indirect_acme").row(0, named=True)
    return row["ci_low"] <= truth <= row["ci_high"], row["bca_low"] <= truth <= row["bca_high"]


def one_cohort(seed: int, n_rep: int) -> dict:
    views = cohort_views(simulate_cohort(SimulationParameters(seed=seed)))
    patients = views["analysis_patients"]
    simulated = covered(fit_mediation(patients, seed=seed, n_rep=n_rep).effects, 0.0)
    linear = covered(
        fit_mediation(linear_patients(329, seed), seed=seed, n_rep=n_rep).effects, -0.1
    )
    test = fit_interaction_model(views["analysis_patient_months"]).test.row(0, named=True)
    sf12 = dict(sf12_change(patients).select("score", "p_value").iter_rows())
    return {
        "sim_pct": simulated[0],
        "sim_bca": simulated[1],
        "lin_pct": linear[0],
        "lin_bca": linear[1],
        "estimate": test["estimate"],
        "se": test["std_error"],
        "p": test["p_value"],
        "lrt_p": test["lrt_p_value"],
        "mcs_p": sf12["mcs12"],
        "pcs_p": sf12["pcs12"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cohorts", type=int, default=200)
    parser.add_argument("--replicates", type=int, default=1000)
    args = parser.parse_args()
    start = time.perf_counter()
    rows = pl.DataFrame([one_cohort(seed, args.replicates) for seed in range(1, args.cohorts + 1)])
    n = rows.height
    print(
        f"{n} simulated cohorts of 329 patients, {args.replicates} bootstrap replicates each "
        f"({time.perf_counter() - start:.0f} s)"
    )
    for name, column in (("simulator (truth 0)", "sim"), ("linear design (truth -0.1)", "lin")):
        pct, bca = rows[f"{column}_pct"].mean(), rows[f"{column}_bca"].mean()
        print(f"  mediation CI coverage, {name}: percentile {pct:.1%}, BCa {bca:.1%}")
    print(
        f"  interaction: mean {rows['estimate'].mean():+.4f} (truth +0.0400), mean SE "
        f"{rows['se'].mean():.4f} (paper 0.0128); power: t p < .05 "
        f"{(rows['p'] < 0.05).mean():.1%}, "
        f"LRT p < .05 {(rows['lrt_p'] < 0.05).mean():.1%}, LRT p <= .002 "
        f"{(rows['lrt_p'] <= 0.002).mean():.1%}"
    )
    print(
        f"  SF-12 change: MCS p < .001 {(rows['mcs_p'] < 0.001).mean():.1%}, PCS p < .05 "
        f"{(rows['pcs_p'] < 0.05).mean():.1%}"
    )


if __name__ == "__main__":
    main()

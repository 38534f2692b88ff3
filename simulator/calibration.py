"""The simulator held against the paper: each published figure, our estimate, the truth.

``population_figures`` gives what the simulator's parameters imply for each figure the
papers publish (study.md): exact where the design fixes it (the interaction's 0.04 per
month, mediation paths that are 0 by construction), otherwise a Monte Carlo value on a
large cohort drawn from the same parameters (``POPULATION_PATIENTS``; its sampling error
is a few hundredths). ``calibration_table`` puts them beside the published figure and
the pipeline's estimate on one workspace (the demo prints it: ``calibration_lines``).
docs/simulator.md says how the parameters were chosen.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import fields, replace
from pathlib import Path

import duckdb
import polars as pl
import statsmodels.formula.api as smf

from models.mediation import OUTCOME_FORMULA, mediation_data
from simulator.cohort import (
    SimulatedCohort,
    SimulationParameters,
    TrajectoryGroup,
    simulate_cohort,
)
from transforms.derived.views import build_views

POPULATION_PATIENTS = 40_000
POPULATION_FILE = "population.json"


def _share(flags: pl.Series) -> float:
    """Percent of True in a boolean column."""
    return 100 * float(flags.cast(pl.Float64).mean())  # type: ignore[arg-type]


def _mean_sd(values: pl.Series) -> tuple[float, float]:
    values = values.drop_nulls().cast(pl.Float64)
    return float(values.mean()), float(values.std())  # type: ignore[arg-type]


def cohort_views(cohort: SimulatedCohort) -> dict[str, pl.DataFrame]:
    """The analysis views of a simulated cohort (local ids as patient keys)."""
    return build_views(cohort.as_tables())


def population_figures(params: SimulationParameters, n: int = POPULATION_PATIENTS) -> dict:
    """Each figure's value in the population the parameters define (see the docstring)."""
    big = simulate_cohort(replace(params, n_patients=n, seed=params.seed + 1))
    patients = cohort_views(big)["analysis_patients"]
    truth = big.truth()
    baseline_sd = _mean_sd(patients["nprs_baseline"])[1]
    frame = mediation_data(patients).to_pandas()
    b = smf.ols(OUTCOME_FORMULA, frame).fit().params["hads_d_baseline"]
    groups = {g.name: g.share for g in params.groups}
    return {
        "n_patients": params.n_patients,
        "women_percent": 100 * params.female_share,
        "age": (params.age_mean, params.age_sd),
        "nprs_baseline": _mean_sd(patients["nprs_baseline"]),
        "nprs_one_year": _mean_sd(patients["nprs_one_year"]),
        "answering_month_12_percent": _share(patients["nprs_one_year"].is_not_null()),
        "effect_size": 12 * truth["expected_slope"] / baseline_sd,
        **{
            f"{s}_{t}": _mean_sd(patients[f"{s}_{t}"])
            for s in ("mcs12", "pcs12")
            for t in ("baseline", "one_year")
        },
        "interaction_not_depressed": params.no_depression_extra_slope,
        "path_a": 0.0,  # dose is drawn independently of HADS-D (given sex)
        "path_b": float(b),
        "direct": 0.0,  # among completers the dose does not depend on the pain course
        "proportion_mediated": None,  # 0 / 0: no total effect to mediate
        "trajectory_shares": {k: v / sum(groups.values()) for k, v in groups.items()},
        "adverse_effects_percent": 100 * big.adverse_events["patient_id"].n_unique() / n,
        "monte_carlo_patients": n,
    }


def parameters_from_truth(truth: dict) -> SimulationParameters:
    """The parameters recorded in a simulation's ``truth.json``, as they were."""
    values = dict(truth["parameters"])
    values["groups"] = tuple(TrajectoryGroup(**g) for g in values["groups"])
    values["first_inclusion"] = dt.date.fromisoformat(values["first_inclusion"])
    known = {f.name for f in fields(SimulationParameters)}
    return SimulationParameters(**{k: v for k, v in values.items() if k in known})


def population_of(simulation: Path) -> dict:
    """``population.json`` in a simulation folder, computed (and kept) the first time."""
    path = simulation / POPULATION_FILE
    if not path.exists():
        truth = json.loads((simulation / "truth.json").read_text(encoding="utf-8"))
        figures = population_figures(parameters_from_truth(truth))
        path.write_text(json.dumps(figures, indent=2), encoding="utf-8")
    return json.loads(path.read_text(encoding="utf-8"))


def _p(value: float | None) -> str:
    if value is None:
        return ""
    return "P < .001" if value < 0.001 else f"P = {value:.3f}".replace("0.", ".", 1)


def _ms(pair) -> str:
    return f"{pair[0]:.1f} ({pair[1]:.1f})"


def _read(results: Path, name: str) -> pl.DataFrame | None:
    path = results / f"{name}.parquet"
    return pl.read_parquet(path) if path.exists() else None


def _descriptive_rows(patients: pl.DataFrame, truth: dict) -> list[tuple[str, str, str, str]]:
    """Cohort description: size, sex, age, pain, follow-up."""
    women = _share(patients["sex"] == "F")
    answering = _share(patients["nprs_one_year"].is_not_null())
    return [
        ("patients", "329", str(patients.height), str(truth["n_patients"])),
        ("women, %", "75.7", f"{women:.1f}", f"{truth['women_percent']:.1f}"),
        ("age, mean (SD)", "51.4 (11.0)", _ms(_mean_sd(patients["age"])), _ms(truth["age"])),
        (
            "NPRS at inclusion",
            "6.8 (1.8)",
            _ms(_mean_sd(patients["nprs_baseline"])),
            _ms(truth["nprs_baseline"]),
        ),
        (
            "NPRS at month 12",
            "5.7 (1.8)",
            _ms(_mean_sd(patients["nprs_one_year"])),
            _ms(truth["nprs_one_year"]),
        ),
        (
            "answering at month 12, %",
            "about 33",
            f"{answering:.0f}",
            f"{truth['answering_month_12_percent']:.0f}",
        ),
    ]


def _model_rows(results: Path, truth: dict) -> list[tuple[str, str, str, str]]:
    """The primary effect size, SF-12 change and the interaction."""
    rows = []
    effect = _read(results, "lmm_primary_effect_size")
    if effect is not None:
        e = effect.row(0, named=True)
        text = f"{e['estimate']:+.2f} ({e['ci_low']:+.2f} to {e['ci_high']:+.2f})"
        rows.append(
            ("one-year effect size", "-0.52 (-0.62 to -0.41)", text, f"{truth['effect_size']:+.2f}")
        )
    published = {
        "mcs12": "39.7 (10.9) -> 42.2 (11.1), P < .001",
        "pcs12": "28.5 (7.9) -> 29.5 (9.2), P = .02",
    }
    sf12 = _read(results, "sf12_change")
    for r in sf12.iter_rows(named=True) if sf12 is not None else []:
        s = r["score"]
        text = (
            f"{r['baseline_mean']:.1f} ({r['baseline_sd']:.1f}) -> {r['one_year_mean']:.1f} "
            f"({r['one_year_sd']:.1f}), {_p(r['p_value'])}"
        )
        rows.append(
            (
                f"SF-12 {s[:3].upper()}",
                published[s],
                text,
                f"{_ms(truth[f'{s}_baseline'])} -> {_ms(truth[f'{s}_one_year'])}",
            )
        )
    test = _read(results, "lmm_interaction_test")
    if test is not None:
        r = test.filter(pl.col("term") == "month:not_depressed").row(0, named=True)
        text = (
            f"{r['estimate']:+.3f} ({r['ci_low']:+.3f} to {r['ci_high']:+.3f}), LRT "
            f"{_p(r['lrt_p_value'])}"
        )
        rows.append(
            (
                "time x no depression (HADS-D <= 7)",
                "-0.04 (-0.06 to -0.01), P = .002",
                text,
                f"{truth['interaction_not_depressed']:+.3f}",
            )
        )
    return rows


def _mediation_rows(results: Path, truth: dict) -> list[tuple[str, str, str, str]]:
    """Paths a and b, the direct effect, the proportion mediated (or why not)."""
    paths, effects = _read(results, "mediation_paths"), _read(results, "mediation_effects")
    if paths is None or effects is None:
        return []
    rows = []
    for label, model, term, published, key in (
        ("mediation a: dose -> HADS-D", "mediator", "dose", "r = -0.06, P = .32", "path_a"),
        (
            "mediation b: HADS-D -> NPRS change",
            "outcome",
            "hads_d_baseline",
            "0.03 (0.01 to 0.04), P < .001",
            "path_b",
        ),
        ("direct effect of dose", "outcome", "dose", "0.00 (-0.01 to 0.01), P = .67", "direct"),
    ):
        r = paths.filter(model=model, term=term).row(0, named=True)
        text = (
            f"{r['estimate']:+.3f} ({r['ci_low']:+.3f} to {r['ci_high']:+.3f}), {_p(r['p_value'])}"
        )
        rows.append((label, published, text, f"{truth[key]:+.3f}"))
    r = effects.filter(effect="proportion_mediated").row(0, named=True)
    text = f"{r['estimate']:.1%}" if r["estimate"] is not None else r["status"]
    rows.append(("proportion mediated", "64.6%", text, "undefined (no total effect)"))
    return rows


def _other_rows(results: Path, truth: dict) -> list[tuple[str, str, str, str]]:
    """Trajectory shares (if the trajectory step published its groups) and adverse effects."""
    rows = []
    groups = _read(results, "trajectory_groups")
    if groups is not None and {"selected", "share"} <= set(groups.columns):
        shares = groups.filter(pl.col("selected"))["share"].sort().to_list()
        text = f"{len(shares)} groups: " + " / ".join(f"{s:.1%}" for s in shares)
        true = " / ".join(f"{s:.1%}" for s in sorted(truth["trajectory_shares"].values()))
        rows.append(("pain trajectories", "3 groups: 16.0% / 35.3% / 45.7%", text, true))
    events = _read(results, "adverse_effects")
    if events is not None:
        share = events.filter(centre_id="all", ae_type="all", severity="all")["percent_patients"]
        rows.append(
            (
                "adverse effects, % of patients",
                "about half",
                f"{share.item():.0f}",
                f"{truth['adverse_effects_percent']:.0f}",
            )
        )
    return rows


def calibration_table(warehouse: Path, results: Path, truth: dict) -> pl.DataFrame:
    """figure, published, estimate, truth: one row per published figure."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        patients = con.sql("SELECT * FROM analysis_patients").pl()
    finally:
        con.close()
    rows = _descriptive_rows(patients, truth) + _model_rows(results, truth)
    rows += _mediation_rows(results, truth) + _other_rows(results, truth)
    return pl.DataFrame(rows, schema=["figure", "published", "estimate", "truth"], orient="row")


def calibration_lines(workspace: Path, manifest: Path | None) -> list[str]:
    """The table as console lines (none without published results or a simulation)."""
    simulation = workspace / "simulation"
    if manifest is None or not (simulation / "truth.json").exists():
        return []
    truth = population_of(simulation)
    table = calibration_table(workspace / "warehouse.duckdb", manifest.parent, truth)
    widths = [max(len(str(v)) for v in [c, *table[c]]) for c in table.columns]
    lines = ["", "The simulator against the paper (truth: the simulator's population value):"]
    for row in [tuple(table.columns), *table.iter_rows()]:
        lines.append("  " + "  ".join(f"{v:<{w}}" for v, w in zip(row, widths, strict=True)))
    return lines

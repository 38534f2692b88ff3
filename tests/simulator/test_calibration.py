"""The simulator reproduces the papers' figures in expectation (fixed seeds; each tolerance
is four sampling SEs at the size drawn, so a miscalibration of that size fails)."""

from __future__ import annotations

import json

import duckdb
import numpy as np
import polars as pl
import pytest

from models import descriptives, interaction, mediation, primary
from models.analysis import Options
from simulator.calibration import (
    calibration_lines,
    calibration_table,
    cohort_views,
    parameters_from_truth,
    population_figures,
)
from simulator.cohort import SimulationParameters, simulate_cohort

N = 3000


@pytest.fixture(scope="module")
def large():
    cohort = simulate_cohort(SimulationParameters(n_patients=N, seed=11))
    return cohort, cohort_views(cohort)


def _within(value: float, target: float, sd: float, n: int) -> None:
    assert abs(value - target) < 4 * sd / np.sqrt(n), (value, target)


def test_sf12_scores_match_the_paper(large):
    """MCS 39.7 (10.9) -> 42.2 (11.1) and PCS 28.5 (7.9) -> 29.5 (9.2), and the one-year
    gains (paired, completers)."""
    _, views = large
    patients = views["analysis_patients"]
    for score, (before, sd_before, after, sd_after) in {
        "mcs12": (39.7, 10.9, 42.2, 11.1),
        "pcs12": (28.5, 7.9, 29.5, 9.2),
    }.items():
        base, year = patients[f"{score}_baseline"].drop_nulls(), patients[f"{score}_one_year"]
        year = year.drop_nulls()
        _within(base.mean(), before, sd_before, base.len())
        _within(year.mean(), after, sd_after, year.len())
        assert base.std() == pytest.approx(sd_before, abs=0.8)
        assert year.std() == pytest.approx(sd_after, abs=1.2)
        change = patients[f"{score}_change"].drop_nulls()
        assert change.mean() == pytest.approx(
            after - before, abs=4 * change.std() / change.len() ** 0.5
        )


def test_dropout_leaves_a_third_at_month_12(large):
    _, views = large
    share = views["analysis_patients"]["nprs_one_year"].is_not_null().mean()
    _within(share, 0.33, np.sqrt(0.33 * 0.67), N)


def test_interaction_is_recovered_with_the_papers_precision(large):
    """+0.04/month (depressed = 1); its SE scales to the paper's 0.0128 at 329 patients
    (CI -0.06 to -0.01: the power behind its p = .002)."""
    _, views = large
    row = interaction.fit_interaction_model(views["analysis_patient_months"]).test.row(
        0, named=True
    )
    assert abs(row["estimate"] - 0.04) < 4 * row["std_error"]
    se_at_paper_size = row["std_error"] * np.sqrt(N / 329)
    assert se_at_paper_size == pytest.approx(0.0128, rel=0.15)


def test_mediation_paths_match_the_design(large):
    """Path a is 0 by construction, path b near the paper's 0.03 (the population value
    0.04 is computed by population_figures), the direct effect 0."""
    _, views = large
    paths = mediation.fit(views, Options(1, 20, 1)).tables["mediation_paths"]
    a = paths.filter(model="mediator", term="dose").row(0, named=True)
    b = paths.filter(model="outcome", term="hads_d_baseline").row(0, named=True)
    direct = paths.filter(model="outcome", term="dose").row(0, named=True)
    assert (
        abs(a["estimate"]) < 4 * a["std_error"]
        and abs(direct["estimate"]) < 4 * direct["std_error"]
    )
    assert abs(b["estimate"] - 0.04) < 4 * b["std_error"] and b["estimate"] > 0


def test_population_figures_are_exact_where_the_design_fixes_them():
    figures = population_figures(SimulationParameters(), n=4000)
    assert figures["interaction_not_depressed"] == -0.04
    assert figures["path_a"] == figures["direct"] == 0.0 and figures["proportion_mediated"] is None
    assert figures["women_percent"] == pytest.approx(75.7)
    assert sum(figures["trajectory_shares"].values()) == pytest.approx(1.0)
    assert figures["mcs12_baseline"][0] == pytest.approx(39.7, abs=1.0)
    assert 0.02 < figures["path_b"] < 0.06


def test_parameters_from_truth_round_trip():
    params = SimulationParameters(n_patients=50, seed=3, slope_sd=0.02)
    truth = json.loads(json.dumps(simulate_cohort(params).truth()))
    assert parameters_from_truth(truth) == params


def test_calibration_table_puts_each_figure_beside_its_estimate_and_truth(tmp_path):
    """On a published set and a warehouse: one row per figure, the estimate read from the
    parquet files, the proportion mediated 'not estimable' (no total effect)."""
    cohort = simulate_cohort(SimulationParameters(n_patients=300, seed=4))
    views = cohort_views(cohort) | {
        "adverse_events": cohort.adverse_events.rename({"patient_id": "patient_key"})
    }
    results = tmp_path / "artifacts"
    results.mkdir()
    for module in (primary, interaction, mediation, descriptives):
        for name, table in module.fit(views, Options(1, 50, 1)).tables.items():
            table.write_parquet(results / f"{name}.parquet")
    warehouse = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(warehouse))
    con.register("patients_view", views["analysis_patients"].to_arrow())
    con.execute("CREATE TABLE analysis_patients AS SELECT * FROM patients_view")
    con.close()
    truth = population_figures(cohort.parameters, n=2000)
    table = calibration_table(warehouse, results, truth)
    rows = {r["figure"]: r for r in table.iter_rows(named=True)}
    assert rows["patients"]["estimate"] == "300" and rows["patients"]["published"] == "329"
    assert rows["proportion mediated"]["estimate"].startswith("not estimable")
    assert rows["time x no depression (HADS-D <= 7)"]["truth"] == "-0.040"
    effect = pl.read_parquet(results / "lmm_primary_effect_size.parquet")["estimate"].item()
    assert rows["one-year effect size"]["estimate"].startswith(f"{effect:+.2f}")
    assert {"SF-12 MCS", "SF-12 PCS", "mediation b: HADS-D -> NPRS change"} <= set(rows)
    assert calibration_lines(tmp_path, None) == []

"""The living study report: every section, with this snapshot's own numbers."""

from __future__ import annotations

import json
import re
import shutil

import polars as pl
import pytest
from scipy import stats

from models.report import ReportError, read_cohort, write_results_report
from models.report import page as page_module
from tests.models.report.conftest import SNAPSHOT
from tests.models.report.pages import images, section, text_of


@pytest.fixture(scope="module")
def page(study) -> str:
    return study.report.read_text(encoding="utf-8")


def _parquet(study, name: str) -> pl.DataFrame:
    return pl.read_parquet(study.results / f"{name}.parquet")


def test_report_header_and_table_one_describe_the_snapshot(study, page):
    """It names the snapshot and the patients, and Table 1 gives N, mean age (SD) and the
    women's count, overall and by baseline depression, with the paper's figures."""
    patients = study.views["analysis_patients"]
    assert f'<code id="snapshot">{SNAPSHOT}</code>' in page
    assert f'<span id="n-patients">{patients.height}</span>' in page
    table = section(page, "table-1")
    age = patients["age"]
    assert f"Age at inclusion, years, mean (SD) 0 {age.mean():.1f} ({age.std():.1f})" in table
    women = (patients["sex"] == "F").sum()
    assert f"Sex, n (%) F {women} ({100 * women / patients.height:.1f})" in table
    groups = patients["depressed"].value_counts()
    for flag, label in ((False, "HADS-D <= 7"), (True, "HADS-D >= 8")):
        assert label in table
        assert str(groups.filter(pl.col("depressed") == flag)["count"].item()) in table
    assert "51.4 (11.0) (JAMA Netw Open 2023)" in table and "Missing" in table


def test_report_pain_curve_gives_mean_ci_and_number_answering_each_month(study, page):
    """It shows, per month, the patients answering (% of included), the mean NPRS (SD) and
    its t-based 95% CI, computed here from the views; and draws the curve."""
    months = study.views["analysis_patient_months"]
    included = study.views["analysis_patients"].height
    text = section(page, "pain-curve")
    for month in (0, 6, 12):
        nprs = months.filter(pl.col("month") == month)["nprs"]
        n, mean, sd = nprs.len(), nprs.mean(), nprs.std()
        half = stats.t.ppf(0.975, n - 1) * sd / n**0.5
        assert (
            f"{month} {n} ({100 * n / included:.0f}%) {mean:.2f} ({sd:.2f}) "
            f"{mean - half:.2f} to {mean + half:.2f}"
        ) in text
    assert "5.7 (SD 1.8); about a third still answer at month 12 (Pain 2022)" in text
    assert images(page, "pain-curve") == [
        "mean NPRS by month with 95% CI and the number of patients answering"
    ]


def test_report_trajectories_show_the_selected_groups_and_their_shares(study, page):
    """It says how many groups were selected, lists their shares, and draws their curves."""
    groups = _parquet(study, "trajectory_groups").filter(pl.col("selected"))
    text = section(page, "trajectories")
    assert f"{groups.height} groups selected; published: 3 groups: 16.0% mild" in text
    for share in groups["share"]:
        assert f"{share:.4g}" in text
    assert len(images(page, "trajectories")) == 1
    assert "trajectory_membership" in text and "one per patient" in text
    assert "p0" not in text  # pseudonyms are not listed in the page


def test_report_models_give_each_table_with_the_published_figures(study, page):
    """It shows the effect size, the interaction's LRT p-value, the centre model and the
    mediation effects from their parquet files, with the paper's figures beside them."""
    text = section(page, "models")
    effect = _parquet(study, "lmm_primary_effect_size").row(0, named=True)
    assert f"standardised_one_year_change {effect['estimate']:.4g}" in text
    assert "-0.52 (95% CI -0.62 to -0.41), P < .001 (JAMA Netw Open 2023)" in text
    test = _parquet(study, "lmm_interaction_test")
    row = test.filter(pl.col("term") == "month:not_depressed").row(0, named=True)
    p = row["lrt_p_value"]
    assert (f"{p:.3f}" if p >= 0.001 else "< 0.001") in text
    assert "omnibus P = .002" in text
    centre = _parquet(study, "lmm_centre_fixed_effects").filter(pl.col("term") == "month")
    assert f"month {centre['estimate'].item():.4g}" in text
    total = _parquet(study, "mediation_effects").filter(pl.col("effect") == "total")
    assert f"total {total['estimate'].item():.4g}" in text and "64.6%" in text
    seconds = json.loads((study.results / "manifest.json").read_text())["specification"]
    assert f"fit time: {seconds['fit_seconds']['primary']:.2f} s" in text


def test_report_forest_plot_and_questionnaires_and_adverse_effects(study, page):
    """It draws the forest plot with its rows, the SF-12 change with the paper's values,
    HADS by month, and the adverse effects grid from the published counts."""
    assert images(page, "forest") == [
        "forest plot of the models' effects with the published figures"
    ]
    assert "month x not depressed (paper's sign)" in section(page, "forest")
    sf12 = _parquet(study, "sf12_change").filter(pl.col("score") == "mcs12").row(0, named=True)
    questionnaires = section(page, "questionnaires")
    assert f"mcs12 {sf12['n']} {sf12['baseline_mean']:.3f}" in questionnaires
    assert "39.7 (10.9) -> 42.2 (11.1), P < .001" in questionnaires
    assert "hads_by_month" in questionnaires
    adverse = _parquet(study, "adverse_effects")
    cohort = adverse.filter(
        (pl.col("centre_id") == "all")
        & (pl.col("ae_type") == "all")
        & (pl.col("severity") == "all")
    ).row(0, named=True)
    cell = (
        f"{cohort['n_events']}; {cohort['patients_affected']} ({cohort['percent_patients']:.1f}%)"
    )
    assert cell in section(page, "adverse-effects")
    assert len(images(page, "adverse-effects")) == 1


def test_report_foot_carries_the_manifest(study, page):
    """It ends with the manifest's snapshot, code version, packages and specification."""
    manifest = json.loads((study.results / "manifest.json").read_text())
    foot = section(page, "provenance")
    assert f"snapshot: {SNAPSHOT}" in foot
    assert f"code version: {manifest['code_version']}" in foot
    assert f"polars {manifest['packages']['polars']}" in foot
    assert '"selection_rule"' in foot  # the whole specification, as JSON


def test_report_is_self_contained_and_quick(study, page):
    """It fetches nothing (no script, no link or source outside the page) and is written
    in a few seconds at this size."""
    assert "<script" not in page
    assert not re.findall(r'(?:src|href)="(?!data:|#|\.\./)', page)
    assert study.seconds < 30, "a benchmark, not a test: see the report step's log for time"


def test_report_refuses_views_of_another_snapshot(study):
    """It will not describe data other than the data the models were fitted on."""
    with pytest.raises(ReportError, match="views are at snapshot snap-report-test, the results"):
        read_cohort(study.con, "another-snapshot")


def test_report_shows_new_columns_and_tables_and_says_what_was_not_fitted(study, tmp_path):
    """It shows a column and a table it does not know (an analysis that grows), and names
    an analysis that failed instead of leaving a blank."""
    folder = tmp_path / "artifacts" / "run"
    shutil.copytree(study.results, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    fixed = pl.read_parquet(folder / "lmm_primary_fixed_effects.parquet")
    fixed.with_columns(status=pl.lit("estimable")).write_parquet(
        folder / "lmm_primary_fixed_effects.parquet"
    )
    pl.DataFrame({"quantity": ["df"], "estimate": [41.5]}).write_parquet(folder / "extra.parquet")
    manifest["files"]["extra_analysis"] = {"file": "extra.parquet"}
    del manifest["files"]["mediation_effects"], manifest["files"]["mediation_paths"]
    manifest["specification"]["failed"] = {"mediation": "ValueError: nobody at month 12"}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    page = write_results_report(folder, study.con, tmp_path / "results.html").read_text()
    models = section(page, "models")
    assert "n_observations status Intercept" in models  # the new column, last
    assert re.search(r"month -0\.\d+ .*? lmm_primary \d+ \d+ estimable", models)
    assert "extra_analysis quantity estimate df 41.50" in section(page, "other-tables")
    assert "not fitted in this run: ValueError: nobody at month 12" in section(page, "models")
    assert "mediation: ValueError: nobody at month 12" in section(page, "provenance")


def test_report_write_is_whole_or_not_at_all(study, tmp_path, monkeypatch):
    """It keeps the previous page when drawing the new one fails, and leaves no temporary."""
    out = tmp_path / "results.html"
    out.write_text("previous")

    def broken(*args, **kwargs):
        raise RuntimeError("drawing failed")

    monkeypatch.setattr(page_module, "render", broken)
    with pytest.raises(RuntimeError, match="drawing failed"):
        write_results_report(study.results, study.con, out)
    assert out.read_text() == "previous" and [p.name for p in tmp_path.iterdir()] == [out.name]


def test_report_text_has_no_raw_float_noise(page):
    """Numbers are formatted for reading: no 15-digit float outside the manifest's JSON."""
    read = re.sub(r"<details>.*?</details>", "", page, flags=re.S)
    assert "log_likelihood" in read and not re.search(r"\d\.\d{9,}", text_of(read))

"""Descriptives on tiny hand-made frames with hand-computed answers (and scipy)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy import stats

from models.descriptives import adverse_effects, hads_by_month, paired_comparison, sf12_change


def _patients() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "patient_key": ["a", "b", "c", "d", "e"],
            "centre_id": ["C1", "C1", "C1", "C2", "C2"],
            "pcs12_baseline": [20.0, 30.0, 25.0, 35.0, None],
            "pcs12_one_year": [22.0, 33.0, 24.0, None, 40.0],
            "mcs12_baseline": [40.0, 42.0, 38.0, 50.0, 45.0],
            "mcs12_one_year": [41.0, 47.0, 39.0, 52.0, 44.0],
        }
    )


def test_paired_comparison_uses_complete_pairs_and_matches_scipy():
    row = paired_comparison(_patients(), "pcs12").row(0, named=True)
    before, after = np.array([20.0, 30.0, 25.0]), np.array([22.0, 33.0, 24.0])
    assert row["n"] == 3
    assert row["baseline_mean"] == pytest.approx(25.0)
    assert row["baseline_sd"] == pytest.approx(5.0)
    assert row["estimate"] == pytest.approx(4 / 3)
    assert row["p_value"] == pytest.approx(stats.ttest_rel(after, before).pvalue)
    diff = after - before
    half = stats.t.ppf(0.975, 2) * diff.std(ddof=1) / np.sqrt(3)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((4 / 3 - half, 4 / 3 + half))


def test_sf12_change_has_one_row_per_score():
    table = sf12_change(_patients())
    assert table["score"].to_list() == ["pcs12", "mcs12"]
    assert table["n"].to_list() == [3, 5]


def test_hads_by_month_skips_unscored_questionnaires():
    hads = pl.DataFrame(
        {
            "month": [0, 0, 0, 12],
            "hads_a": [10.0, 12.0, None, 7.0],
            "hads_d": [8.0, None, 4.0, 3.0],
        }
    )
    table = hads_by_month(hads)
    rows = {(r["score"], r["month"]): r for r in table.iter_rows(named=True)}
    assert rows[("hads_a", 0)]["mean"] == 11.0 and rows[("hads_a", 0)]["n"] == 2
    assert rows[("hads_d", 0)]["sd"] == pytest.approx(np.std([8.0, 4.0], ddof=1))
    assert rows[("hads_d", 12)]["n"] == 1


def test_adverse_effects_count_events_and_patients_per_type_severity_and_centre():
    events = pl.DataFrame(
        {
            "patient_key": ["a", "a", "b", "d", "d"],
            "centre_id": ["C1", "C1", "C1", "C2", "C2"],
            "ae_type": ["nausea", "nausea", "nausea", "dizziness", "nausea"],
            "severity": ["mild", "mild", "severe", None, "mild"],
        }
    )
    table = adverse_effects(events, _patients())
    rows = {(r["centre_id"], r["ae_type"], r["severity"]): r for r in table.iter_rows(named=True)}
    overall = rows[("all", "all", "all")]
    assert (overall["n_events"], overall["patients_affected"], overall["n_patients"]) == (5, 3, 5)
    nausea = rows[("all", "nausea", "all")]
    assert (nausea["n_events"], nausea["patients_affected"]) == (4, 3)
    assert rows[("all", "nausea", "mild")]["percent_patients"] == pytest.approx(40.0)
    assert rows[("C1", "nausea", "all")]["percent_patients"] == pytest.approx(100 * 2 / 3)
    assert rows[("C2", "dizziness", "unknown")]["patients_affected"] == 1

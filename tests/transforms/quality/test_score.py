"""Statuses from counts and thresholds; scorecards; no engine needed (tiny frames)."""

from __future__ import annotations

import polars as pl
import pytest

from schemas.expectations import Threshold
from transforms.quality.score import ALL_CENTRES, breaches_of, score, scorecard, status


@pytest.mark.parametrize(
    ("n_checked", "n_violating", "threshold", "expected"),
    [
        (0, 0, Threshold(pct=0.0, count=0), "not_applicable"),
        (10, 0, Threshold(pct=0.0, count=0), "passed"),
        (10, 1, Threshold(pct=0.0, count=0), "failed"),
        (100, 5, Threshold(pct=5.0), "passed"),
        (100, 6, Threshold(pct=5.0), "failed"),
        (1000, 6, Threshold(pct=5.0, count=5), "failed"),  # either limit fails it
        (1000, 6, Threshold(count=10), "passed"),
        (None, None, Threshold(count=0), "error"),
    ],
)
def test_status_from_counts_and_thresholds(n_checked, n_violating, threshold, expected):
    """It fails on percent OR count; nothing to check is not_applicable, never passed."""
    assert status(n_checked, n_violating, threshold) == expected


def _results() -> pl.DataFrame:
    rows = [
        ("a", "conformance", "C01", 10, 0, 0.0, 0),
        ("a", "conformance", "C02", 10, 2, 0.0, 0),
        ("b", "completeness", "C01", 100, 10, 15.0, None),
        ("b", "completeness", "C02", 0, 0, 15.0, None),
    ]
    schema = {
        "check_id": pl.String,
        "category": pl.String,
        "centre_id": pl.String,
        "n_checked": pl.Int64,
        "n_violating": pl.Int64,
        "threshold_pct": pl.Float64,
        "threshold_count": pl.Int64,
    }
    return pl.DataFrame(rows, schema=schema, orient="row").with_columns(
        observed=pl.lit(None, pl.String)
    )


def test_score_overrides_thresholds_per_check():
    """A new threshold changes the status of that check only."""
    default = score(_results())
    assert default["status"].to_list() == ["passed", "failed", "passed", "not_applicable"]
    relaxed = score(_results(), {"a": Threshold(count=2)})
    assert relaxed["status"].to_list() == ["passed", "passed", "passed", "not_applicable"]
    assert relaxed["pct_violating"].to_list() == [0.0, 20.0, 10.0, None]


def test_scorecard_counts_only_applicable_checks_and_pools_all_centres():
    """C02's empty completeness is n/a, not 100 %; ALL sums the counts of both centres."""
    card = scorecard(score(_results()))
    rows = {r["centre_id"]: r for r in card.iter_rows(named=True)}
    assert card["centre_id"].to_list() == [ALL_CENTRES, "C02", "C01"]  # worst first
    assert rows["C02"]["completeness"] is None and rows["C02"]["conformance"] == 0.0
    assert rows["C01"]["overall"] == 100.0
    assert rows[ALL_CENTRES]["conformance"] == 0.0  # 2 of 20 > 0
    assert rows[ALL_CENTRES]["failed"] == 1


def test_breaches_name_centre_check_and_observed_vs_threshold():
    """One breach per failed check and centre, readable in a log line."""
    breaches = breaches_of(score(_results()))
    assert [(b.centre_id, b.check_id) for b in breaches] == [("C02", "a")]
    assert str(breaches[0]) == "C02 a: 2 of 10 (20.0%) > 0% or 0"


def test_scorecard_carries_the_share_of_rows_quarantined_and_sorts_by_it():
    """It gives each centre its share of rows quarantined (rows affected, not checks) and
    puts the centre with more rows to fix first when both fail as many checks."""
    rows = [
        ("conf_quarantine_rate", "conformance", "C01", 100, 38, 5.0, None),
        ("conf_quarantine_rate", "conformance", "C02", 100, 11, 5.0, None),
        ("c", "conformance", "C01", 50, 0, 0.0, 0),
        ("c", "conformance", "C02", 50, 0, 0.0, 0),
    ]
    results = (
        _results()
        .head(0)
        .vstack(
            pl.DataFrame(
                rows, schema=_results().drop("observed").schema, orient="row"
            ).with_columns(observed=pl.lit(None, pl.String))
        )
    )
    card = scorecard(score(results))
    assert card["centre_id"].to_list() == [ALL_CENTRES, "C01", "C02"]
    shares = dict(zip(card["centre_id"], card["rows_quarantined_pct"], strict=True))
    assert shares == {ALL_CENTRES: 24.5, "C01": 38.0, "C02": 11.0}
    assert card.filter(centre_id="C01")["conformance"].item() == 50.0  # 1 of 2 checks

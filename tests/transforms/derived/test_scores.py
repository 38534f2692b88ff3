"""HADS and SF-12 scores against hand-computed cases and the published worked examples."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from schemas.forms import HADS_ITEMS, SF12_RANGES
from transforms.derived.scores import hads_scores, sf12_scores

EXAMPLES = Path(__file__).parents[2] / "data" / "sf12_v1_examples.csv"
ANXIETY, DEPRESSION = HADS_ITEMS[:7], HADS_ITEMS[7:]


def _hads(anxiety: list[int | None], depression: list[int | None]) -> dict:
    frame = pl.DataFrame(
        [dict(zip(ANXIETY, anxiety, strict=True)) | dict(zip(DEPRESSION, depression, strict=True))],
        schema=dict.fromkeys(HADS_ITEMS, pl.Int64),
    )
    return hads_scores(frame).select("hads_a", "hads_d", "depressed").row(0, named=True)


def test_hads_complete_items_are_summed():
    got = _hads([0, 1, 2, 3, 0, 1, 2], [3, 3, 3, 3, 3, 3, 3])
    assert got == {"hads_a": 9.0, "hads_d": 21.0, "depressed": True}


def test_hads_half_rule_scores_the_mean_of_answered_items_times_seven():
    # 5 answered (3+2+2+1+0 = 8): 8 / 5 x 7 = 11.2; 4 answered (1+1+1+1): 7.0
    got = _hads([3, 2, 2, 1, 0, None, None], [1, 1, 1, 1, None, None, None])
    assert got["hads_a"] == pytest.approx(11.2)
    assert got["hads_d"] == pytest.approx(7.0)
    assert got["depressed"] is False


def test_hads_fewer_than_four_answered_items_give_no_score():
    got = _hads([3, 3, 3, None, None, None, None], [None] * 7)
    assert got == {"hads_a": None, "hads_d": None, "depressed": None}


def test_depression_cut_off_is_hads_d_at_least_8():
    assert _hads([0] * 7, [1, 1, 1, 1, 1, 1, 1])["depressed"] is False  # 7
    assert _hads([0] * 7, [2, 1, 1, 1, 1, 1, 1])["depressed"] is True  # 8


def test_sf12_matches_every_published_worked_example():
    examples = pl.read_csv(EXAMPLES, schema_overrides={"case": pl.String})
    scored = sf12_scores(examples.drop("pcs12", "mcs12"))
    assert scored.height == examples.height >= 5
    for got, want in zip(scored.iter_rows(named=True), examples.iter_rows(named=True), strict=True):
        assert got["pcs12"] == pytest.approx(want["pcs12"], abs=1e-4), got["case"]
        assert got["mcs12"] == pytest.approx(want["mcs12"], abs=1e-4), got["case"]


def test_sf12_best_answers_score_the_constants_and_reverse_coding_matters():
    reversed_items = ("gh1", "bp2", "mh3", "vt2")
    best = {item: (1 if item in reversed_items else top) for item, top in SF12_RANGES.items()}
    worst_gh1 = best | {"gh1": 5}  # "poor" general health: category 1 after 6 - raw
    scored = sf12_scores(pl.DataFrame([best, worst_gh1]))
    assert scored["pcs12"].to_list() == pytest.approx([56.57706, 56.57706 - 8.37399])
    assert scored["mcs12"].to_list() == pytest.approx([60.75781, 60.75781 - 1.71175])


@pytest.mark.parametrize("change", [{"sf2": None}, {"mh3": 7}, {"pf02": 0}])
def test_sf12_missing_or_out_of_range_answer_gives_no_score(change):
    reversed_items = ("gh1", "bp2", "mh3", "vt2")
    best = {item: (1 if item in reversed_items else top) for item, top in SF12_RANGES.items()}
    frame = pl.DataFrame([best | change], schema=dict.fromkeys(SF12_RANGES, pl.Int64))
    assert sf12_scores(frame).select("pcs12", "mcs12").row(0) == (None, None)

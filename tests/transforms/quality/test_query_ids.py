"""Query ids computed for a whole frame at once (DuckDB's sha256) are the ids the stored
query log already holds (Python's sha256 per row): a change would reopen every query."""

from __future__ import annotations

import polars as pl

from transforms.quality.lifecycle import per_distinct, query_id, query_ids


def test_query_ids_equal_the_per_row_ids_with_nulls_integers_and_accents():
    """It gives each row query_id(source, *row): a null as '', integers as their digits,
    text as UTF-8 (an accented field name included)."""
    rows = pl.DataFrame(
        {
            "centre_id": ["C01", "C02", None, "C03"],
            "patient_key": ["a1b2", None, "ff00", "0a0a"],
            "month": [3, None, 0, 12],
            "field": ["nprs", "hads_a1", "durée", ""],
        }
    )
    columns = ["centre_id", "patient_key", "month", "field"]
    expected = [query_id("check", *row) for row in rows.select(columns).iter_rows()]
    assert query_ids(rows, "check", columns).to_list() == expected
    assert expected[0] == "Q" + expected[0][1:].upper() and len(expected[0]) == 13
    assert len(set(expected)) == 4


def test_per_distinct_words_each_combination_once_and_keeps_row_order():
    """It calls the wording once per distinct (form, field), nulls included, and returns
    the rows in their order with their words."""
    calls = []

    def words(row: dict) -> str:
        calls.append((row["form"], row["field"]))
        return f"{row['form']}:{row['field']}"

    rows = pl.DataFrame({"form": ["hads", "sf12", "hads", None], "field": ["a1", None, "a1", "x"]})
    worded = per_distinct(rows, ["form", "field"], words, "words")
    assert worded["words"].to_list() == ["hads:a1", "sf12:None", "hads:a1", "None:x"]
    assert sorted(calls, key=str) == sorted([("hads", "a1"), ("sf12", None), (None, "x")], key=str)

"""Cross-form rules: unknown patients, dates before inclusion, months that disagree with dates."""

from __future__ import annotations

import datetime as dt

import polars as pl

from schemas.forms import FORMS
from transforms.staging.relations import relational_failures

PATIENTS = pl.DataFrame({"patient_key": ["pA", "pB"], "inclusion_date": [dt.date(2016, 7, 7)] * 2})


def _follow_ups(rows, file_hash="f1"):
    return pl.DataFrame(
        rows,
        schema={
            "_record": pl.Int64,
            "_source_row": pl.Int64,
            "patient_key": pl.String,
            "month": pl.Int64,
            "call_date": pl.Date,
            "nprs": pl.Int64,
        },
        orient="row",
    ).with_columns(_file_hash=pl.lit(file_hash))


def test_relational_failures_flags_each_rule_once():
    valid = _follow_ups(
        [
            (0, 1, "pA", 0, dt.date(2016, 7, 7), 7),  # fine
            (1, 2, "pA", 3, dt.date(2016, 10, 9), 6),  # fine: 94 days = month 3
            (2, 3, "pZ", 1, dt.date(2016, 8, 7), 6),  # unknown patient
            (3, 4, "pB", 0, dt.date(2016, 7, 1), 6),  # before inclusion
            (4, 5, "pB", 2, dt.date(2016, 11, 7), 6),  # month 2 but 4 months after inclusion
            (5, 6, "pB", 1, None, 5),  # no call date: nothing to compare
        ]
    )
    kept, failures = relational_failures(
        valid, FORMS["follow_up"], PATIENTS, pl.Series([], dtype=pl.String)
    )
    assert kept["_record"].to_list() == [0, 1, 5]
    assert failures.sort("_record").select("_source_row", "column", "rule").rows() == [
        (3, "patient_id", "unknown patient"),
        (4, "call_date", "before inclusion"),
        (5, "month", "month inconsistent with call date"),
    ]
    assert (
        "is month 4 after inclusion"
        in failures.filter(rule="month inconsistent with call date")["message"].item()
    )


def test_relational_failures_says_when_the_inclusion_is_in_quarantine():
    valid = _follow_ups([(0, 1, "pQ", 1, dt.date(2016, 8, 7), 6)])
    _, failures = relational_failures(valid, FORMS["follow_up"], PATIENTS, pl.Series(["pQ"]))
    assert "inclusion record is in quarantine" in failures["message"].item()


def test_relational_failures_tell_files_apart():
    """Rows of two files share record numbers: only the failing file's row is removed."""
    good = _follow_ups([(0, 1, "pA", 0, dt.date(2016, 7, 7), 7)], file_hash="good")
    bad = _follow_ups([(0, 1, "pZ", 0, dt.date(2016, 7, 7), 7)], file_hash="bad")
    kept, failures = relational_failures(
        pl.concat([good, bad]), FORMS["follow_up"], PATIENTS, pl.Series([], dtype=pl.String)
    )
    assert kept.select("_file_hash", "_record").rows() == [("good", 0)]
    assert failures.select("_file_hash", "_record", "rule").rows() == [
        ("bad", 0, "unknown patient")
    ]

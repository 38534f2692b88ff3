"""Validation: every record read is valid, quarantined or an exact duplicate."""

from __future__ import annotations

from pathlib import Path

from schemas.forms import FORMS
from transforms.staging.read import stage_file
from transforms.staging.validate import validate_staged

from .test_read import REDCAP_FOLLOW_UP

HEADER = "record_id,redcap_event_name,date_appel,nprs\n"


def _validate(body: str):
    staged = stage_file(
        (HEADER + body).encode(), Path("c_followup_1.csv"), REDCAP_FOLLOW_UP, FORMS["follow_up"]
    )
    return validate_staged(staged, FORMS["follow_up"])


def test_validate_quarantines_out_of_range_score_with_row_column_and_rule():
    """NPRS 11 is quarantined with its source row, column, rule and value."""
    checked = _validate("1,baseline_arm_1,2016-07-07,7\n2,baseline_arm_1,2016-07-08,11\n")
    assert checked.valid["patient_id"].to_list() == ["1"]
    row = checked.quarantine.row(0, named=True)
    assert (row["_source_row"], row["column"], row["source_column"], row["value"]) == (
        2,
        "nprs",
        "nprs",
        "11",
    )
    assert row["rule"] == "less_than_or_equal_to(10)"
    assert "must be <= 10" in row["message"]


def test_validate_collects_every_failure_at_once():
    """Lazy validation: all bad records of a file are reported in one pass."""
    checked = _validate(
        "1,baseline_arm_1,2016-07-07,-1\n2,month_9_arm_1,2016-07-08,5\n3,baseline_arm_1,2031-01-01,5\n"
        ",baseline_arm_1,2016-07-07,4\n4,baseline_arm_1,2016-07-07,6.5\n"
    )
    assert checked.valid.height == 0
    got = sorted(checked.quarantine.select("_source_row", "column").rows())
    assert got == [(1, "nprs"), (2, "month"), (3, "call_date"), (4, "patient_id"), (5, "nprs")]
    assert checked.quarantine.filter(column="month")["rule"].item() == "unknown code"


def test_validate_counts_exact_duplicates_and_quarantines_conflicting_ones():
    checked = _validate(
        "1,baseline_arm_1,2016-07-07,7\n1,baseline_arm_1,2016-07-07,7\n"  # exact duplicate
        "2,baseline_arm_1,2016-07-07,7\n2,baseline_arm_1,2016-07-07,3\n"  # conflicting values
    )
    assert checked.rows_duplicate == 1
    assert checked.valid["patient_id"].to_list() == ["1"]
    conflicts = checked.quarantine.filter(
        rule="conflicting duplicate of natural key (patient_id, month)"
    )
    assert sorted(conflicts["_source_row"].to_list()) == [3, 4]


def test_validate_accounts_for_every_record():
    """rows read = valid + quarantined + exact duplicates."""
    checked = _validate(
        "1,baseline_arm_1,2016-07-07,7\n1,baseline_arm_1,2016-07-07,7\n1,month_1_arm_1,2016-08-07,12\n"
        "1,month_2_arm_1,2016-09-07,x\n2,month_1_arm_1,2016-08-07,4\n"
    )
    assert checked.rows_read == 5
    assert checked.valid.height + checked.rows_quarantined + checked.rows_duplicate == 5
    assert (checked.valid.height, checked.rows_quarantined, checked.rows_duplicate) == (2, 2, 1)

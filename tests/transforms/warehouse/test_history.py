"""Corrections supersede, history is kept, the past stays queryable, nothing is deleted."""

from __future__ import annotations

import polars as pl
import pytest

from cohortflow.errors import CohortflowError
from schemas.forms import FORMS
from tests.conftest import TEST_KEY
from tests.nights import corrected_export, night
from transforms import warehouse
from transforms.staging.pseudonym import patient_key
from transforms.warehouse import history
from transforms.warehouse import views as stored

pytestmark = pytest.mark.slow  # two nights each on a simulated workspace: 2-3 s each


def test_a_correction_supersedes_and_keeps_history(workspace):
    con, first_snapshot = night(workspace, "run-1")
    con.close()
    target, new_score, dropped = corrected_export(workspace)
    con, second_snapshot = night(workspace, "run-2")
    key = patient_key(TEST_KEY, "C01", target["record_id"])

    current = con.execute(
        "SELECT nprs FROM follow_ups WHERE patient_key = ? AND month = 3", [key]
    ).fetchall()
    assert current == [(new_score,)]
    versions = con.execute(
        "SELECT nprs, _valid_from, _valid_to FROM follow_ups_history "
        "WHERE patient_key = ? AND month = 3 ORDER BY _valid_from",
        [key],
    ).fetchall()
    assert versions == [(int(target["nprs"]), 1, 2), (new_score, 2, None)]
    change = con.execute(
        "SELECT natural_key, column_name, old_value, new_value, run_id FROM changes"
    ).fetchall()
    assert change == [("month=3", "nprs", target["nprs"], str(new_score), "run-2")]

    as_of_first = history.table_as_of(con, FORMS["follow_up"], 1)
    old = as_of_first.filter(patient_key=key, month=3)["nprs"].item()
    assert old == int(target["nprs"])
    assert first_snapshot != second_snapshot


def test_a_row_missing_from_a_full_export_is_flagged_not_deleted(workspace):
    con, _ = night(workspace, "run-1")
    con.close()
    _, _, dropped = corrected_export(workspace)
    con, _ = night(workspace, "run-2")
    key = patient_key(TEST_KEY, "C01", dropped["record_id"])
    still_there = con.execute(
        "SELECT count(*) FROM follow_ups WHERE patient_key = ? AND month = 1", [key]
    ).fetchall()
    assert still_there == [(1,)]
    flagged = con.execute(
        "SELECT table_name, patient_key, natural_key, run_id FROM absent_rows"
    ).fetchall()
    assert flagged == [("follow_ups", key, "month=1", "run-2")]


def test_any_snapshot_is_materialised_identically(workspace):
    con, first = night(workspace, "run-1")
    tables_then = warehouse.current_tables(con)
    con.close()
    corrected_export(workspace)
    con, second = night(workspace, "run-2")
    rebuilt = warehouse.materialise_snapshot(con, first)
    for table, frame in tables_then.items():
        assert rebuilt[table].equals(frame), table
    assert warehouse.content_hash(warehouse.materialise_snapshot(con, second)) == second
    with pytest.raises(CohortflowError, match="unknown snapshot"):
        warehouse.materialise_snapshot(con, "0000000000000000")


def test_the_same_export_again_changes_nothing_and_counts_rows_as_same(workspace):
    con, first = night(workspace, "run-1")
    con.close()
    folder = workspace / "inbox" / "C01"
    original = folder / "C01_followup_20170922.csv"
    # same rows, different bytes (a trailing newline): a new file, but no new data
    (folder / "C01_followup_20171022.csv").write_bytes(original.read_bytes() + b"\n")
    con, second = night(workspace, "run-2")
    assert first == second
    counts = con.execute(
        "SELECT rows_new, rows_changed, rows_absent FROM ingested_files WHERE run_id = 'run-2'"
    ).fetchall()
    assert counts == [(0, 0, 0)]
    assert con.execute("SELECT count(*) FROM changes").fetchall() == [(0,)]


def test_views_follow_corrections_and_rebuild_identically_for_an_old_snapshot(workspace):
    from transforms.derived.views import build_views

    con, first = night(workspace, "run-1")
    assert warehouse.refresh_views(con, first) is True
    assert warehouse.refresh_views(con, first) is False  # same snapshot: nothing to do
    views_then = {
        n: con.sql(f"SELECT * FROM {n}").pl()
        for n in ("analysis_patient_months", "analysis_patients")
    }
    n_months = con.sql("SELECT count(*) FROM follow_ups").fetchall()[0][0]
    assert views_then["analysis_patient_months"].height == n_months
    n_patients = con.sql("SELECT count(*) FROM patients").fetchall()[0][0]
    assert views_then["analysis_patients"].height == n_patients
    con.close()

    target, new_score, _ = corrected_export(workspace)
    con, second = night(workspace, "run-2")
    assert warehouse.refresh_views(con, second) is True
    key = patient_key(TEST_KEY, "C01", target["record_id"])
    now = con.execute(
        "SELECT nprs FROM analysis_patient_months WHERE patient_key = ? AND month = 3", [key]
    ).fetchall()
    assert now == [(new_score,)]

    rebuilt = build_views(warehouse.materialise_snapshot(con, first))
    for name, frame in views_then.items():
        assert rebuilt[name].equals(frame), name


def test_rows_a_full_export_holds_but_sets_aside_are_not_flagged_absent(workspace):
    """A re-exported row that is now quarantined (a Pandera rule, or a cross-form rule such
    as a call before inclusion) is still in the export: it is not reported absent."""
    con, _ = night(workspace, "run-1")
    loaded = {
        k for (k,) in con.execute("SELECT patient_key FROM follow_ups WHERE month = 3").fetchall()
    }
    con.close()
    old = workspace / "inbox" / "C01" / "C01_followup_20170922.csv"
    rows = pl.read_csv(old, infer_schema=False)
    month_3 = rows.filter(pl.col("redcap_event_name") == "month_3_arm_1")
    clean = [  # rows loaded on the first night, and the only month-3 row of their patient
        r
        for r in month_3.filter(pl.col("record_id").is_unique()).rows()
        if patient_key(TEST_KEY, "C01", r[0]) in loaded
    ]
    first, second = clean[:2]
    target = (pl.col("redcap_event_name") == "month_3_arm_1") & pl.col("record_id").is_in(
        [first[0], second[0]]
    )
    broken = rows.with_columns(
        nprs=pl.when(target & (pl.col("record_id") == first[0]))
        .then(pl.lit("15"))  # out of range: Pandera
        .otherwise(pl.col("nprs")),
        date_appel=pl.when(target & (pl.col("record_id") == second[0]))
        .then(pl.lit("2016-01-02"))  # before the patient's inclusion: cross-form rule
        .otherwise(pl.col("date_appel")),
    )
    broken.write_csv(workspace / "inbox" / "C01" / "C01_followup_20171022.csv")
    con, _ = night(workspace, "run-2")
    rules = con.execute(
        "SELECT rule FROM quarantine WHERE run_id = 'run-2' AND centre_id = 'C01' ORDER BY rule"
    ).fetchall()
    assert ("before inclusion",) in rules and ("less_than_or_equal_to(10)",) in rules
    assert con.execute("SELECT count(*) FROM absent_rows").fetchall() == [(0,)]
    loaded = con.execute(
        "SELECT rows_absent FROM ingested_files WHERE file_name = 'C01_followup_20171022.csv'"
    ).fetchall()
    assert loaded == [(0,)]


def test_snapshot_id_is_the_content_of_the_tables_whatever_their_order(workspace):
    """The warehouse's id equals the hash of its tables as frames, in any row order; a
    single changed value, or a lineage-only difference, changes it or not as it should."""
    con, snapshot = night(workspace, "run-1")
    tables = warehouse.current_tables(con)
    assert warehouse.content_hash(tables) == snapshot
    shuffled = {
        name: frame.sample(fraction=1.0, shuffle=True, seed=1) for name, frame in tables.items()
    }
    assert warehouse.content_hash(shuffled) == snapshot
    relabelled = dict(tables, follow_ups=tables["follow_ups"].with_columns(_run_id=pl.lit("x")))
    assert warehouse.content_hash(relabelled) == snapshot  # lineage is not content
    one_more_point = tables["follow_ups"].with_columns(
        nprs=pl.when(pl.int_range(pl.len()) == 0).then(pl.col("nprs") + 1).otherwise("nprs")
    )
    assert warehouse.content_hash(dict(tables, follow_ups=one_more_point)) != snapshot
    missing = tables["follow_ups"].with_columns(
        call_date=pl.when(pl.int_range(pl.len()) == 0).then(None).otherwise("call_date")
    )
    assert warehouse.content_hash(dict(tables, follow_ups=missing)) != snapshot


def test_views_built_in_chunks_of_patients_equal_the_whole_build(workspace, monkeypatch):
    """At scale the views are built for a range of patient keys at a time (memory): the
    materialised result is the whole build, row for row and in the same order."""
    from transforms.derived.views import VIEW_NAMES, build_views

    con, snapshot = night(workspace, "run-1")
    monkeypatch.setattr(stored, "PATIENTS_PER_VIEW_CHUNK", 7)  # 60 patients: 9 chunks
    assert len(stored._key_ranges(60)) == 9 and stored._key_ranges(7) == [None]
    assert stored._key_ranges(14) == [("p00", "p80"), ("p80", "pg")]
    assert warehouse.refresh_views(con, snapshot) is True
    whole = build_views(warehouse.current_tables(con))
    for name in VIEW_NAMES:
        chunked = con.sql(f"SELECT * FROM {name}").pl()
        assert chunked.height > 0 and chunked.equals(whole[name]), name

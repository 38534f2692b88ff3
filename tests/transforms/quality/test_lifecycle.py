"""Queries with a lifecycle, and each centre's outbound file (issue: the data manager's
morning). A hand-made fault in C01's follow-ups is quarantined on night 1, persists on a
night with nothing new, and closes when C01 sends a corrected export; the outbound file
names C01's own record for it, and nothing of any other centre."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from tests.conftest import TEST_KEY
from tests.nights import night
from transforms import warehouse
from transforms.quality import run_quality
from transforms.quality.lifecycle import ESCALATE_AFTER_NIGHTS, open_queries, update_log
from transforms.quality.outbox import write_outbound_files
from transforms.staging.mapping import load_all_mappings

OLD = "C01_followup_20170922.csv"
NEW = "C01_followup_20171022.csv"  # a later export of the same form


@pytest.fixture
def faulty(workspace):
    """C01's follow-ups with one NPRS of 15 (allowed 0-10): returns the row's local id,
    month event and its 1-based data row in the file."""
    path = workspace / "inbox" / "C01" / OLD
    rows = pl.read_csv(path, infer_schema=False)
    index = 5
    target = rows.row(index, named=True)
    rows.with_columns(
        nprs=pl.when(pl.int_range(pl.len()) == index).then(pl.lit("15")).otherwise("nprs")
    ).write_csv(path)
    return workspace, target["record_id"], target["redcap_event_name"], index


def _quality(con, ws, run_id: str, day: int):
    snapshot = warehouse.snapshot_id(con)
    warehouse.refresh_views(con, snapshot)
    return run_quality(
        con,
        run_id=run_id,
        workspace_reports=ws / "reports",
        now=dt.datetime(2017, 11, day, tzinfo=dt.UTC),
        with_gx=False,
    )


def _nprs_queries(result, centre="C01"):
    return result.open_queries.filter(
        (pl.col("centre_id") == centre)
        & (pl.col("field") == "nprs")
        & (pl.col("form") == "follow_up")
    )


def test_query_opens_persists_then_closes_with_the_corrected_export(faulty):
    """It opens a query for the bad value, keeps it (2 nights) on a night with nothing new,
    and closes it when a later export re-sends the patient with the value fixed; a night
    with no change reports no new breach."""
    ws, local_id, event, index = faulty
    con, _ = night(ws, "n1")
    first = _quality(con, ws, "dq-1", 1)
    (query,) = _nprs_queries(first).iter_rows(named=True)
    assert query["is_new"] and query["nights_open"] == 1 and query["kind"] == "to fix"
    assert query["file_name"] == OLD and query["value"] == "15"
    assert query["problem"] == "Monthly call: NPRS = 15 is out of range"
    assert query["allowed"] == "0 to 10; required"

    second = _quality(con, ws, "dq-2", 2)  # nothing new
    (again,) = _nprs_queries(second).iter_rows(named=True)
    assert again["query_id"] == query["query_id"] and again["nights_open"] == 2
    assert not again["is_new"]
    assert second.night_lines()[0] == "no new breaches"
    assert second.lifecycle["new_tonight"].sum() == 0
    con.close()

    fixed = pl.read_csv(ws / "inbox" / "C01" / OLD, infer_schema=False)
    fixed.with_columns(
        nprs=pl.when(pl.int_range(pl.len()) == index).then(pl.lit("4")).otherwise("nprs")
    ).write_csv(ws / "inbox" / "C01" / NEW)
    con, _ = night(ws, "n2")
    third = _quality(con, ws, "dq-3", 3)
    assert _nprs_queries(third).is_empty()
    closed = con.execute(
        "SELECT closed_run FROM dq_query_log WHERE query_id = ?", [query["query_id"]]
    ).fetchall()
    assert closed == [("dq-3",)]
    c01 = third.lifecycle.filter(centre_id="C01").row(0, named=True)
    assert c01["closed_tonight"] >= 1
    con.close()


def test_query_still_wrong_in_the_later_export_stays_open(faulty):
    """It keeps the same query open when the later export still holds the bad value."""
    ws, *_ = faulty
    con, _ = night(ws, "n1")
    (query,) = _nprs_queries(_quality(con, ws, "dq-1", 1)).iter_rows(named=True)
    con.close()
    later = pl.read_csv(ws / "inbox" / "C01" / OLD, infer_schema=False)
    other = pl.int_range(pl.len()) == later.height - 1  # another row changed: a new export
    later.with_columns(nprs=pl.when(other).then(pl.lit("0")).otherwise("nprs")).write_csv(
        ws / "inbox" / "C01" / NEW
    )
    con, _ = night(ws, "n2")
    (still,) = _nprs_queries(_quality(con, ws, "dq-2", 2)).iter_rows(named=True)
    assert still["query_id"] == query["query_id"] and still["nights_open"] == 2
    assert still["file_name"] == NEW  # now asked about the latest export
    con.close()


def test_query_open_for_n_nights_is_escalated(faulty):
    """It escalates a query seen on ``ESCALATE_AFTER_NIGHTS`` quality runs."""
    ws, *_ = faulty
    con, _ = night(ws, "n1")
    result = _quality(con, ws, "dq-1", 1)
    observed = result.open_queries.select(pl.exclude("is_new"))
    for n in range(2, ESCALATE_AFTER_NIGHTS + 1):
        update_log(con, observed, f"dq-{n}", dt.datetime(2017, 11, n))
        escalated = open_queries(con, f"dq-{n}")["escalated"].unique().to_list()
        assert escalated == [n >= ESCALATE_AFTER_NIGHTS]
    con.close()


def test_outbound_file_names_the_centres_own_record_and_nothing_else(faulty):
    """It writes C01's lines with C01's local ids, file, row, field, plain problem, value
    and what is allowed; every quarantined row of C01 is there; no other centre's id."""
    ws, local_id, _, index = faulty
    con, _ = night(ws, "n1")
    result = _quality(con, ws, "dq-1", 1)
    written = write_outbound_files(
        ws / "outbox",
        result.open_queries,
        result.information,
        inbox=ws / "inbox",
        mappings=load_all_mappings(ws / "centres"),
        secret=TEST_KEY,
    )
    assert written["C01"] == ws / "outbox" / "C01" / "C01_queries.xlsx"
    lines = pl.read_csv(ws / "outbox" / "C01" / "C01_queries.csv", infer_schema=False)
    bad = lines.filter(pl.col("value") == "15").row(0, named=True)
    assert bad["patient (your id)"] == local_id and bad["file"] == OLD
    assert bad["row"] == str(index + 1) and bad["field"] == "Monthly call: NPRS"
    assert bad["problem"] == "Monthly call: NPRS = 15 is out of range"
    assert bad["allowed"] == "0 to 10; required" and bad["status"] == "open"
    assert bad["opened"] == "2017-11-01"  # opened tonight: tonight's date says it is new
    quarantined = con.execute(
        "SELECT count(*) FROM quarantine WHERE centre_id = 'C01' AND resolved_run_id IS NULL"
    ).fetchone()[0]
    assert (
        lines.filter(pl.col("sheet") != "information").height
        == quarantined
        + result.open_queries.filter(
            (pl.col("centre_id") == "C01") & pl.col("source").str.starts_with("quarantine").not_()
        ).height
    )
    ids = lines["patient (your id)"].drop_nulls()
    assert ids.len() > 0 and ids.str.starts_with("C01-").all()  # nothing of another centre
    sheets = pl.read_excel(written["C01"], sheet_id=0)  # every sheet
    assert set(sheets) == {"To fix", "Waiting for another fix", "Information"}
    assert sheets["To fix"].height == lines.filter(sheet="to fix").height
    con.close()

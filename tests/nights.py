"""Nights run from plain functions (no Prefect), and a centre's corrected re-export:
shared by the tests of history, pulls, quality and the CLI."""

from __future__ import annotations

import polars as pl

from tests.conftest import TEST_KEY
from transforms import warehouse
from transforms.ingest import load_prepared
from transforms.reevaluate import reevaluate_waiting
from transforms.staging.mapping import load_all_mappings
from transforms.staging.prepare import prepare_centre


def night(ws, run_id):
    """One ingestion run, closed with its snapshot id as the flow does."""
    con = warehouse.connect(ws / "warehouse.duckdb")
    warehouse.start_run(con, run_id, kind="night")
    known = warehouse.known_files(con)
    for mapping in load_all_mappings(ws / "centres").values():
        load_prepared(con, prepare_centre(ws / "inbox", mapping, known), run_id, TEST_KEY)
    snapshot = warehouse.snapshot_id(con)
    warehouse.finish_run(con, run_id, status="completed", snapshot_id=snapshot)
    return con, snapshot


def corrected_export(ws):
    """C01 (REDCap style) re-exports its follow-ups: one score corrected, one row gone."""
    old = ws / "inbox" / "C01" / "C01_followup_20170922.csv"
    rows = pl.read_csv(old, infer_schema=False)
    target = rows.filter(pl.col("redcap_event_name") == "month_3_arm_1").row(0, named=True)
    dropped = rows.filter(pl.col("redcap_event_name") == "month_1_arm_1").row(0, named=True)
    new_score = str((int(target["nprs"]) + 3) % 11)
    fixed = rows.with_columns(
        nprs=pl.when(
            (pl.col("record_id") == target["record_id"])
            & (pl.col("redcap_event_name") == "month_3_arm_1")
        )
        .then(pl.lit(new_score))
        .otherwise(pl.col("nprs"))
    ).filter(
        ~(
            (pl.col("record_id") == dropped["record_id"])
            & (pl.col("redcap_event_name") == "month_1_arm_1")
        )
    )
    fixed.write_csv(ws / "inbox" / "C01" / "C01_followup_20171022.csv")
    return target, int(new_score), dropped


def centre_night(ws, run_id, centre):
    """One centre's night as the flow runs it: files loaded under a changed mapping read
    again, rows that waited for a fixed record re-evaluated, the run closed with its
    snapshot. Returns the connection, the file reports and the re-evaluation reports."""
    con = warehouse.connect(ws / "warehouse.duckdb")
    warehouse.start_run(con, run_id)
    mappings = load_all_mappings(ws / "centres")
    hashes = {k: h for m in mappings.values() for k, h in m.content_hashes().items()}
    known = warehouse.known_files(con) - warehouse.files_to_restage(con, hashes)
    prepared = prepare_centre(ws / "inbox", mappings[centre], known)
    reports = load_prepared(con, prepared, run_id, TEST_KEY)
    again = reevaluate_waiting(con, ws / "inbox", {centre: mappings[centre]}, run_id, TEST_KEY)
    warehouse.finish_run(con, run_id, status="completed", snapshot_id=warehouse.snapshot_id(con))
    return con, reports, again

"""Ingesting a simulated inbox without Prefect: counts, faults, idempotency, atomicity."""

from __future__ import annotations

import os

import polars as pl
import pytest

from schemas.forms import FORMS
from tests.conftest import TEST_KEY
from transforms import warehouse
from transforms.ingest import load_prepared
from transforms.staging.mapping import load_all_mappings
from transforms.staging.prepare import prepare_centre
from transforms.warehouse import load


def ingest(ws, run_id="run-1"):
    mappings = load_all_mappings(ws / "centres")
    con = warehouse.connect(ws / "warehouse.duckdb")
    warehouse.start_run(con, run_id)
    known = warehouse.known_files(con)
    reports = []
    for mapping in mappings.values():
        reports += load_prepared(
            con, prepare_centre(ws / "inbox", mapping, known), run_id, TEST_KEY
        )
    return con, reports


def test_ingest_accounts_for_every_row_of_every_file(workspace):
    """Invariant 1: per file, rows read = loaded + quarantined + duplicates, as recorded."""
    con, reports = ingest(workspace)
    files = con.sql("SELECT * FROM ingested_files").pl()
    assert files.height == len(reports) == 42  # 6 centres x 7 forms (an XLSX sheet each)
    assert (files["status"] == "loaded").all()
    assert (
        files["rows_read"]
        == files["rows_loaded"] + files["rows_quarantined"] + files["rows_duplicate"]
    ).all()
    loaded = con.sql(
        " UNION ALL ".join(
            f"SELECT _file_hash AS file_hash, '{f.name}' AS form, count(*) AS n "
            f"FROM {f.table} GROUP BY 1"
            for f in FORMS.values()
        )
    ).pl()
    recorded = files.join(loaded, on=["file_hash", "form"], how="left").with_columns(
        pl.col("n").fill_null(0)
    )
    assert (recorded["rows_loaded"] == recorded["n"]).all()
    quarantined = con.sql(
        "SELECT file_hash, form, count(DISTINCT record) AS n FROM quarantine GROUP BY 1, 2"
    ).pl()
    recorded = files.join(quarantined, on=["file_hash", "form"], how="left").with_columns(
        pl.col("n").fill_null(0)
    )
    assert (recorded["rows_quarantined"] == recorded["n"]).all()


def test_ingest_quarantines_exactly_the_damaged_rows_with_their_rule(workspace):
    """Every fault the simulator recorded is in quarantine under the rule that must catch it
    (file, form, source row), and no row it left intact is quarantined."""
    con, _ = ingest(workspace)
    faults = pl.read_csv(workspace / "simulation" / "faults.csv").filter(
        pl.col("kind") != "exact_duplicate"
    )
    assert set(faults["kind"]) >= {"out_of_range", "unknown_code", "conflicting_duplicate"}
    quarantine = con.sql("SELECT file_name AS file, form, source_row, rule FROM quarantine").pl()
    keys = ["file", "form", "source_row"]
    uncaught = faults.join(quarantine, on=[*keys, "rule"], how="anti")
    assert uncaught.height == 0, uncaught
    clean_but_quarantined = quarantine.join(faults, on=keys, how="anti")
    assert clean_but_quarantined.height == 0, clean_but_quarantined


def test_ingest_counts_injected_exact_duplicates(workspace):
    con, _ = ingest(workspace)
    faults = pl.read_csv(workspace / "simulation" / "faults.csv")
    expected = faults.filter(kind="exact_duplicate").height
    recorded = con.execute("SELECT sum(rows_duplicate) FROM ingested_files").fetchall()[0][0]
    assert expected > 0
    assert recorded == expected


def test_ingest_twice_loads_nothing_new(workspace):
    """Invariant 2: the same files a second time change nothing."""
    con, _ = ingest(workspace)
    before = (
        warehouse.snapshot_id(con),
        con.execute("SELECT count(*) FROM quarantine").fetchall()[0],
    )
    con.close()
    con, reports = ingest(workspace, run_id="run-2")
    assert reports == []
    assert (
        warehouse.snapshot_id(con),
        con.execute("SELECT count(*) FROM quarantine").fetchall()[0],
    ) == before


def test_ingest_same_content_under_another_name_is_not_loaded_again(workspace):
    con, _ = ingest(workspace)
    con.close()
    centre = sorted((workspace / "inbox").iterdir())[0]
    original = next(p for p in centre.iterdir() if "inclusion" in p.name)
    renamed = original.name.replace("2017", "2018")  # still matches the centre's pattern
    (centre / renamed).write_bytes(original.read_bytes())
    _, reports = ingest(workspace, run_id="run-2")
    assert reports == []


def test_a_failed_batch_leaves_the_warehouse_as_before_it(workspace, monkeypatch):
    """Invariant 3: a failure while loading a batch (every centre's follow-up files) leaves
    the warehouse as before it: no file of the batch is partly loaded or recorded."""
    mappings = load_all_mappings(workspace / "centres")
    con = warehouse.connect(workspace / "warehouse.duckdb")
    warehouse.start_run(con, "run-1")
    prepared = [f for m in mappings.values() for f in prepare_centre(workspace / "inbox", m, set())]
    inclusions = [f for f in prepared if f.file.form == "inclusion"]
    follow_ups = [f for f in prepared if f.file.form == "follow_up"]
    assert len(follow_ups) == len(mappings) > 1
    load_prepared(con, inclusions, "run-1", TEST_KEY)
    before = warehouse.snapshot_id(con)

    def crash(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(load, "_record_files", crash)
    with pytest.raises(RuntimeError):
        load_prepared(con, follow_ups, "run-1", TEST_KEY)
    assert warehouse.snapshot_id(con) == before
    for table in ("follow_ups", "follow_ups_history"):
        assert con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0] == 0
    assert con.execute("SELECT count(*) FROM quarantine WHERE form = 'follow_up'").fetchall() == [
        (0,)
    ]
    assert con.execute(
        "SELECT count(*) FROM ingested_files WHERE form = 'follow_up'"
    ).fetchall() == [(0,)]


def test_no_table_holds_a_local_id_or_the_key(workspace):
    """Every column of every table (history, changes, quarantine too): pseudonyms only."""
    con, _ = ingest(workspace)
    local_ids = set(pl.read_parquet(workspace / "simulation" / "latent.parquet")["patient_id"])
    tables = [t for (t,) in con.execute("SHOW TABLES").fetchall()]
    assert {"patients", "follow_ups_history", "quarantine", "changes"} <= set(tables)
    for table in tables:
        frame = con.sql(f"SELECT * FROM {table}").pl()
        for column in frame.columns:
            values = set(frame[column].cast(pl.String).drop_nulls())
            assert not values & local_ids, (table, column)
            assert TEST_KEY not in values, (table, column)


def test_unknown_patient_follow_ups_go_to_quarantine(workspace):
    centre = sorted((workspace / "inbox").iterdir())[0]
    inclusion = next(p for p in centre.iterdir() if "inclusion" in p.name)
    inclusion.unlink()
    con, reports = ingest(workspace)
    follow = next(r for r in reports if r.centre_id == centre.name and r.form == "follow_up")
    assert follow.rows_loaded == 0
    assert follow.rows_quarantined + follow.rows_duplicate == follow.rows_read
    rules = con.sql(
        "SELECT DISTINCT rule FROM quarantine WHERE centre_id = ? AND rule = 'unknown patient'",
        params=[centre.name],
    ).fetchall()
    assert rules == [("unknown patient",)]


def test_file_matching_no_pattern_is_rejected_and_reported(workspace):
    centre = sorted((workspace / "inbox").iterdir())[0]
    (centre / "notes.txt").write_text("call the centre on Monday")
    con, reports = ingest(workspace)
    rejected = [r for r in reports if r.status == "rejected"]
    assert [r.file_name for r in rejected] == ["notes.txt"]
    assert "matches none of the patterns" in rejected[0].error
    assert con.execute(
        "SELECT status FROM ingested_files WHERE file_name = 'notes.txt'"
    ).fetchall()[0] == ("rejected",)


def test_unsettled_files_are_recent_or_partial_unless_marked_done(tmp_path):
    """It names files that may still be being copied; a '.done' marker settles a file."""
    from transforms.staging.inbox import unsettled_files

    old, young, marked, partial = (tmp_path / n for n in ("a.csv", "b.csv", "c.csv", "d.csv.part"))
    for path in (old, young, marked, partial):
        path.write_text("x\n")
    (tmp_path / "c.csv.done").write_text("")
    now = 1_000_000.0
    os.utime(old, (now - 120, now - 120))
    for path in (young, marked, partial):
        os.utime(path, (now - 5, now - 5))
    assert unsettled_files(tmp_path, 30, now=now) == ["b.csv", "d.csv.part"]
    assert unsettled_files(tmp_path, 0, now=now) == ["d.csv.part"]

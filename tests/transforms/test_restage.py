"""A corrected mapping re-stages the files read under the old one (invariant 8).

A hand-written centre whose first mapping is wrong in two ways a data manager meets: a
code missing from the code list (the patient's inclusion goes to quarantine, and its
follow-ups wait for it), and a unit left out (weights in pounds loaded as kilograms: a
silent error that no rule catches). Fixing the YAML must reach the rows already loaded
and the rows in quarantine, once, with history, and without undoing a newer export.
"""

from __future__ import annotations

import pytest

from tests.conftest import TEST_KEY
from tests.nights import centre_night
from transforms.staging.pseudonym import patient_key

MAPPING = """\
centre_id: C91
forms:
  inclusion:
    file_pattern: "patients_*.csv"
    columns: {patient_id: pid, sex: gender, age: age, pain_diagnosis: diagnosis,
              weight_kg: weight_lb, inclusion_date: included_on}
    codes:
      sex: {f: F, m: M}
      pain_diagnosis: {neuro: neuropathic}
  follow_up:
    file_pattern: "calls_*.csv"
    export: incremental
    columns: {patient_id: pid, month: month, call_date: called_on, nprs: pain}
"""
FIXED_MAPPING = MAPPING.replace(
    "pain_diagnosis: {neuro: neuropathic}",
    "pain_diagnosis: {neuro: neuropathic, fibro: fibromyalgia}\n    units: {weight_kg: lb}",
)
PATIENTS = """\
pid,gender,age,diagnosis,weight_lb,included_on
B-1,f,51,neuro,154.0,2017-01-10
B-2,m,63,fibro,176.0,2017-01-12
"""
CALLS = """\
pid,month,called_on,pain
B-1,0,2017-01-10,7
B-2,0,2017-01-12,8
B-2,1,2017-02-12,6
"""
LB = 0.45359237


@pytest.fixture
def ws(tmp_path):
    root = tmp_path / "ws"
    (root / "centres").mkdir(parents=True)
    (root / "centres" / "C91.yaml").write_text(MAPPING)
    folder = root / "inbox" / "C91"
    folder.mkdir(parents=True)
    (folder / "patients_20170301.csv").write_text(PATIENTS)
    (folder / "calls_20170320.csv").write_text(CALLS)
    return root


def _night(ws, run_id):
    return centre_night(ws, run_id, "C91")


def _counts(con) -> dict[str, tuple]:
    rows = con.execute(
        "SELECT file_name, rows_read, rows_loaded, rows_quarantined, rows_duplicate "
        "FROM ingested_files ORDER BY file_name"
    ).fetchall()
    return {r[0]: r[1:] for r in rows}


def test_restage_reads_again_the_files_of_a_corrected_mapping(ws):
    """It re-stages the inclusion file (codes and units fixed): B-1's weight is corrected
    with history, B-2 loads, and B-2's follow-ups waiting in quarantine load after it."""
    con, *_ = _night(ws, "run-1")
    b1, b2 = (patient_key(TEST_KEY, "C91", p) for p in ("B-1", "B-2"))
    assert con.execute("SELECT weight_kg FROM patients").fetchall() == [(154.0,)]  # wrong
    assert _counts(con) == {
        "calls_20170320.csv": (3, 1, 2, 0),
        "patients_20170301.csv": (2, 1, 1, 0),
    }
    con.close()

    (ws / "centres" / "C91.yaml").write_text(FIXED_MAPPING)
    con, reports, again = _night(ws, "run-2")
    assert [(r.file_name, r.restaged, r.rows_loaded) for r in reports] == [
        ("patients_20170301.csv", True, 2)
    ]
    weights = dict(con.execute("SELECT patient_key, weight_kg FROM patients").fetchall())
    assert weights == {b1: pytest.approx(154.0 * LB), b2: pytest.approx(176.0 * LB)}
    change = con.execute(
        "SELECT column_name, old_value, run_id FROM changes WHERE patient_key = ?", [b1]
    ).fetchall()
    assert change == [("weight_kg", "154.0", "run-2")]
    assert [(r.file_name, r.rows_loaded) for r in again] == [("calls_20170320.csv", 2)]
    assert _counts(con) == {
        "calls_20170320.csv": (3, 3, 0, 0),
        "patients_20170301.csv": (2, 2, 0, 0),
    }
    open_entries = con.execute(
        "SELECT count(*) FROM quarantine WHERE resolved_run_id IS NULL"
    ).fetchall()
    assert open_entries == [(0,)]
    con.close()

    con, reports, again = _night(ws, "run-3")  # the same mapping again: nothing to do
    assert reports == [] and again == []


def test_restage_replays_old_exports_without_undoing_newer_ones(ws):
    """It applies a corrected mapping to two inclusion exports without churn: the newer
    export's age stays, only the unit correction is recorded, nothing is flagged absent."""
    folder = ws / "inbox" / "C91"
    (ws / "centres" / "C91.yaml").write_text(
        MAPPING.replace("{neuro: neuropathic}", "{neuro: neuropathic, fibro: fibromyalgia}")
    )
    con, *_ = _night(ws, "run-1")
    con.close()
    newer = PATIENTS.replace("B-2,m,63,", "B-2,m,64,") + "B-3,f,40,neuro,132.0,2017-03-02\n"
    (folder / "patients_20170401.csv").write_text(newer)
    con, *_ = _night(ws, "run-2")
    con.close()

    (ws / "centres" / "C91.yaml").write_text(FIXED_MAPPING)
    con, reports, _ = _night(ws, "run-3")
    assert sorted((r.file_name, r.restaged) for r in reports) == [
        ("patients_20170301.csv", True),
        ("patients_20170401.csv", True),
    ]
    b2 = patient_key(TEST_KEY, "C91", "B-2")
    assert con.execute("SELECT age FROM patients WHERE patient_key = ?", [b2]).fetchall() == [(64,)]
    changed = con.execute(
        "SELECT DISTINCT column_name FROM changes WHERE run_id = 'run-3'"
    ).fetchall()
    assert changed == [("weight_kg",)]
    assert con.execute("SELECT count(*) FROM changes WHERE run_id = 'run-3'").fetchall() == [
        (3,)
    ]  # one unit correction per patient, each once
    assert con.execute("SELECT count(*) FROM absent_rows").fetchall() == [(0,)]
    assert _counts(con)["patients_20170301.csv"] == (2, 2, 0, 0)

"""`cohortflow check-mapping` and `cohortflow ingest --centre C --dry-run` on a centre
written here by hand: problems named a line each, a rehearsal that loads nothing."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl
import pytest

from cohortflow.cli import main
from tests.conftest import TEST_KEY
from tests.nights import night
from transforms import warehouse

PATIENTS = (
    "PatientID\tSex\tAge\tInclusion\tWeight\n"
    "K01\tF\t50\t14-Jul-2016\t70\n"
    "K02\tM\t61\t02-Aug-2016\t82.5\n"
)
KETAMINE = (
    "PatientID\tDate\tTime\tDose\tUnit\n"
    "K01\t15-Jul-2016\t14:00\t1.5\tmg/kg\n"
    "K01\t15-Jul-2016\t09:30\t100\tmg\n"
    "K02\t03-Aug-2016\t10:00\t1.2\tmg\n"  # 1.2 mg: a dose per kg given as mg
    "K09\t03-Aug-2016\t10:00\t90\tmg\n"  # no such patient
)
MAPPING = """\
centre_id: E01
forms:
  inclusion:
    file_pattern: 'patients*.tsv'
    format: {delimiter: "\\t"}
    columns: {patient_id: PatientID, sex: Sex, age: Age, inclusion_date: Inclusion,
              weight_kg: Weigth}
    date_formats: {inclusion_date: '%d-%b-%Y'}
  ketamine:
    file_pattern: 'ketamine_log*.tsv'
    format: {delimiter: "\\t"}
    columns: {patient_id: PatientID, administration_date: Date, dose_mg: Dose}
    units: {dose_mg: {column: Units}}
    derived: {sequence: {from: rank, date: administration_date, time: Time}}
    date_formats: {administration_date: '%d-%b-%Y'}
"""


@pytest.fixture
def centre(tmp_path: Path, monkeypatch) -> Path:
    (tmp_path / "inbox" / "E01").mkdir(parents=True)
    (tmp_path / "centres").mkdir()
    (tmp_path / "inbox" / "E01" / "patients.tsv").write_text(PATIENTS)
    (tmp_path / "inbox" / "E01" / "ketamine_log_2017.tsv").write_text(KETAMINE)
    (tmp_path / "centres" / "E01.yaml").write_text(MAPPING)
    monkeypatch.setenv("COHORTFLOW_PSEUDONYM_KEY", TEST_KEY)
    monkeypatch.setenv("COHORTFLOW_SETTLE_SECONDS", "0")
    return tmp_path


def test_check_mapping_names_each_problem_with_a_did_you_mean(centre, capsys):
    assert main(["check-mapping", "E01", "--workspace", str(centre)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[1:] == [
        "  forms.inclusion.columns.weight_kg: 'Weigth' is not in patients.tsv's header; "
        "did you mean 'Weight'?",
        "  forms.ketamine.units.dose_mg: 'Units' is not in ketamine_log_2017.tsv's header; "
        "did you mean 'Unit'?",
    ]


def test_check_mapping_lists_load_problems_one_per_line(centre, capsys):
    broken = MAPPING.replace(
        "derived: {sequence: {from: rank, date: administration_date, time: Time}}",
        "constants: {route: iv}",
    ).replace("sex: Sex, ", "")
    (centre / "centres" / "E01.yaml").write_text(broken)
    assert main(["check-mapping", "E01", "--workspace", str(centre)]) == 1
    out = capsys.readouterr().out
    assert "the mapping does not load" in out
    assert "  forms.inclusion: required column(s) sex neither mapped" in out


def test_a_dry_run_names_its_centre(centre, capsys):
    assert main(["ingest", "--dry-run", "--workspace", str(centre)]) == 1
    assert "--dry-run rehearses one centre: give it with --centre C" in capsys.readouterr().err
    assert main(["ingest", "--centre", "E01", "--workspace", str(centre)]) == 1
    assert "--centre and --mapping go with --dry-run" in capsys.readouterr().err


def test_a_draft_outside_centres_is_checked_where_it_is(centre, capsys):
    draft = centre / "drafts" / "E01-draft.yaml"
    draft.parent.mkdir()
    draft.write_text(MAPPING.replace("Weigth", "Weight").replace("Units", "Unit"))
    (centre / "centres" / "E01.yaml").unlink()
    assert main(["check-mapping", "E01", "--mapping", str(draft), "--workspace", str(centre)]) == 0
    assert "loads, and fits the files" in capsys.readouterr().out
    assert main(["check-mapping", "E02", "--workspace", str(centre)]) == 1


def test_dry_run_reports_and_writes_the_quarantine_without_loading(centre, capsys):
    """The patients loaded by a first night; the ketamine log rehearsed against them:
    K01's two doses would load (mg and mg/kg), K02's 1.2 'mg' and unknown K09 would not."""
    fixed = MAPPING.replace("Weigth", "Weight").replace("Units", "Unit")
    (centre / "centres" / "E01.yaml").write_text(fixed)
    log = centre / "inbox" / "E01" / "ketamine_log_2017.tsv"
    log.unlink()
    con, _ = night(centre, "first-night")
    warehouse.publish_read_copy(con, centre / "warehouse.duckdb")
    con.close()
    before = (centre / "warehouse.duckdb").read_bytes()
    log.write_text(KETAMINE)
    assert main(["ingest", "--centre", "E01", "--dry-run", "--workspace", str(centre)]) == 1
    out = capsys.readouterr().out
    assert "ketamine_log_2017.tsv (ketamine): 4 rows read, 2 would load, 2 quarantined" in out
    assert "patients.tsv" not in out  # loaded already: the next night would not read it
    assert (centre / "warehouse.duckdb").read_bytes() == before  # nothing loaded or recorded
    quarantine = pl.read_csv(centre / "dry-run" / "E01" / "quarantine.csv")
    assert quarantine.select("source_row", "rule").rows() == [
        (3, "dose_mg_not_a_dose_per_kg"),
        (4, "unknown patient"),
    ]
    assert "probably a dose per kg given as mg" in quarantine["message"][0]
    assert "K09" not in (centre / "dry-run" / "E01" / "quarantine.csv").read_text()
    with duckdb.connect(str(centre / "warehouse.duckdb"), read_only=True) as db:
        assert db.execute("SELECT count(*) FROM ketamine_administrations").fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM ingested_files").fetchone() == (1,)


def test_a_unit_column_forgotten_then_added_loads_the_doses_it_held_back(centre):
    """The issue's story: a first mapping forgot the unit column, so 1.5 (mg/kg) reads as
    1.5 mg: quarantined at the door as a likely per-kg dose, never loaded as mg. The mapping
    gains its unit column; the next night reads the same file again and loads it as 1.5
    mg/kg, closing that quarantine row; K02's 1.2 mg stays quarantined."""
    from tests.nights import centre_night

    fixed = MAPPING.replace("Weigth", "Weight").replace("Units", "Unit")
    forgot = fixed.replace("    units: {dose_mg: {column: Unit}}\n", "")
    (centre / "centres" / "E01.yaml").write_text(forgot)
    con, _, _ = centre_night(centre, "night-1", "E01")
    loaded = "SELECT sequence, dose_mg, dose_mg_per_kg FROM ketamine_administrations ORDER BY ALL"
    waiting = (
        "SELECT source_row, rule FROM quarantine WHERE form = 'ketamine' "
        "AND resolved_run_id IS NULL ORDER BY ALL"
    )
    assert con.execute(loaded).fetchall() == [(1, 100.0, None)]
    assert con.execute(waiting).fetchall() == [
        (1, "dose_mg_not_a_dose_per_kg"),
        (3, "dose_mg_not_a_dose_per_kg"),
        (4, "unknown patient"),
    ]
    con.close()
    (centre / "centres" / "E01.yaml").write_text(fixed)
    con, reports, _ = centre_night(centre, "night-2", "E01")
    try:
        assert con.execute(loaded).fetchall() == [(1, 100.0, None), (2, None, 1.5)]
        assert [r.restaged for r in reports if r.form == "ketamine"] == [True]
        assert con.execute(waiting).fetchall() == [
            (3, "dose_mg_not_a_dose_per_kg"),
            (4, "unknown patient"),
        ]
    finally:
        con.close()

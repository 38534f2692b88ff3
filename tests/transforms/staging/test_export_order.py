"""Exports applied in export order (invariant 9), from hand-written foreign exports.

A centre names its files day first (``suivi_C02_15102017.csv``): in name order the
November export sorts before the October one. The simulated C02 of the small workspace
is replaced by hand-written files and a hand-written mapping; the other centres load as
usual beside it.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from cohortflow.cli.summary import night_summary
from cohortflow.errors import ConfigError
from flows.nightly import NightResult
from tests.conftest import TEST_KEY
from transforms import warehouse
from transforms.ingest import load_prepared
from transforms.staging.inbox import ExportFile, Rejection
from transforms.staging.mapping import load_all_mappings, load_centre_mapping
from transforms.staging.order import (
    FROM_FILE_NAME,
    FROM_MODIFIED,
    LoadedExport,
    applied_orders,
    export_warnings,
    hold_late_exports,
)
from transforms.staging.prepare import prepare_centre

pytestmark = pytest.mark.slow  # nights on hand-written exports: 1-3 s each

INCLUSION = "patient;sexe;age;inclusion\nP-001;F;54;01/09/2017\nP-002;H;61;05/09/2017\n"
OCTOBER = "patient;EN_M0;EN_M1\nP-001;5;4\nP-002;6;6\n"
NOVEMBER = "patient;EN_M0;EN_M1\nP-001;7;4\nP-002;6;6\n"  # corrects P-001's month 0: 5 -> 7
IN_NAME = r"""    export_date: {from: file_name, pattern: '_(\d{8})\.csv$', format: '%d%m%Y'}
"""
MAPPING = """centre_id: C02
forms:
  inclusion:
    file_pattern: "inclusion_C02_*.csv"
    format: {delimiter: ";"}
    columns: {patient_id: patient, sex: sexe, age: age, inclusion_date: inclusion}
    codes: {sex: {F: F, H: M}}
    date_formats: {inclusion_date: "%d/%m/%Y"}
  follow_up:
    file_pattern: "suivi_C02_*.csv"
    format: {delimiter: ";"}
    layout: wide
    id_columns: {patient_id: patient}
    wide_columns: {nprs: 'EN_M(\\d+)'}
"""


def foreign_centre(ws, export_date: str = IN_NAME, files: dict[str, str] | None = None):
    """C02 replaced by hand-written exports: an inclusion file and the given follow-ups."""
    inbox = ws / "inbox" / "C02"
    shutil.rmtree(inbox)
    inbox.mkdir()
    (ws / "centres" / "C02.yaml").write_text(MAPPING + export_date, encoding="utf-8")
    (inbox / "inclusion_C02_01092017.csv").write_text(INCLUSION)
    for name, text in (files or {}).items():
        (inbox / name).write_text(text)
    return inbox


def run_night(ws, run_id, settle_seconds=0.0):
    """A night from plain functions (tests/nights.py), keeping the per-file reports."""
    con = warehouse.connect(ws / "warehouse.duckdb")
    warehouse.start_run(con, run_id)
    known = warehouse.known_files(con)
    reports = []
    for mapping in load_all_mappings(ws / "centres").values():
        prepared = prepare_centre(ws / "inbox", mapping, known, settle_seconds=settle_seconds)
        reports += load_prepared(con, prepared, run_id, TEST_KEY)
    warehouse.finish_run(con, run_id, status="completed", snapshot_id=warehouse.snapshot_id(con))
    return con, reports


def month0(con) -> list[int]:
    """C02's month-0 pain scores (P-001's is 5 in October, 7 in November; P-002's is 6)."""
    rows = con.execute(
        "SELECT nprs FROM follow_ups WHERE centre_id = 'C02' AND month = 0 ORDER BY nprs"
    ).fetchall()
    return [n for (n,) in rows]


def c02_changes(con) -> list[tuple]:
    return con.execute(
        "SELECT column_name, old_value, new_value FROM changes "
        "WHERE table_name = 'follow_ups' AND patient_key IN "
        "(SELECT patient_key FROM patients WHERE centre_id = 'C02') ORDER BY run_seq"
    ).fetchall()


def c02_files(con) -> dict[str, tuple]:
    rows = con.execute(
        "SELECT file_name, status, export_date, export_date_source, error FROM ingested_files "
        "WHERE centre_id = 'C02' AND form = 'follow_up'"
    ).fetchall()
    return {name: tuple(rest) for name, *rest in rows}


def test_export_order_applies_the_later_export_last_within_a_night(workspace):
    """It applies two exports of one night by the date in their names, not name order: the
    November correction stands, and history records only 5 -> 7."""
    foreign_centre(
        workspace, files={"suivi_C02_15102017.csv": OCTOBER, "suivi_C02_01112017.csv": NOVEMBER}
    )
    con, reports = run_night(workspace, "r1")
    assert month0(con) == [6, 7]
    assert c02_changes(con) == [("nprs", "5", "7")]
    files = c02_files(con)
    assert files["suivi_C02_15102017.csv"][:3] == ("loaded", dt.date(2017, 10, 15), "file name")
    assert files["suivi_C02_01112017.csv"][:3] == ("loaded", dt.date(2017, 11, 1), "file name")
    (order,) = [o for o in applied_orders(reports) if o.centre_id == "C02"]
    assert order.describe() == (
        "C02 follow_up: 2 exports applied in export order 15/10/2017, 01/11/2017 "
        "(date from file name)"
    )
    assert not order.ambiguous and not export_warnings(reports)


def test_export_order_holds_back_an_export_older_than_one_already_loaded(workspace):
    """It does not apply a late export over a newer one loaded on an earlier night: the
    file is rejected naming both dates, the newer value stays, history is untouched; a
    newer export the night after still applies."""
    inbox = foreign_centre(workspace, files={"suivi_C02_01112017.csv": NOVEMBER})
    run_night(workspace, "r1")[0].close()
    (inbox / "suivi_C02_15102017.csv").write_text(OCTOBER)
    con, reports = run_night(workspace, "r2")
    assert month0(con) == [6, 7]
    assert c02_changes(con) == []
    status, _, _, error = c02_files(con)["suivi_C02_15102017.csv"]
    assert status == "rejected"
    assert error.startswith(
        "late export: exported 15/10/2017 (date from file name), before the export of "
        "01/11/2017 already loaded (suivi_C02_01112017.csv): not applied"
    )
    assert "nothing is lost: the newer full export holds" in error
    (late,) = [r for r in reports if r.file_name == "suivi_C02_15102017.csv"]
    assert late.status == "rejected" and late.error == error
    con.close()
    (inbox / "suivi_C02_20112017.csv").write_text(NOVEMBER.replace("P-002;6", "P-002;8"))
    con, _ = run_night(workspace, "r3")
    assert month0(con) == [7, 8]
    assert c02_changes(con) == [("nprs", "6", "8")]
    assert c02_files(con)["suivi_C02_15102017.csv"][0] == "rejected"


def test_export_order_without_a_declared_date_follows_modification_times_and_warns(workspace):
    """It orders a night's exports of a form by modification time when no date is declared
    (here against name order), and says the order is ambiguous."""
    inbox = foreign_centre(
        workspace,
        export_date="",
        files={"suivi_C02_15102017.csv": OCTOBER, "suivi_C02_01112017.csv": NOVEMBER},
    )
    os.utime(inbox / "suivi_C02_15102017.csv", (1_700_000_000, 1_700_000_000))
    os.utime(inbox / "suivi_C02_01112017.csv", (1_700_000_100, 1_700_000_100))
    con, reports = run_night(workspace, "r1")
    assert month0(con) == [6, 7]
    assert c02_changes(con) == [("nprs", "5", "7")]
    source = c02_files(con)["suivi_C02_15102017.csv"][2]
    assert source == "modification time (no export date declared)"
    assert export_warnings(reports) == [
        "C02 follow_up: 2 exports in one night and no export date declared in its mapping: "
        "applied in order of modification time (suivi_C02_15102017.csv, "
        "suivi_C02_01112017.csv); declare forms.follow_up.export_date in the centre's "
        "mapping so that the order comes from the data"
    ]


def test_export_order_with_one_export_a_night_needs_no_declared_date(workspace):
    """It warns about order only when there is an order to choose: every other centre of
    the simulated workspace sends one file per form, and declares no date."""
    _, reports = run_night(workspace, "r1")
    assert reports and not export_warnings(reports)
    assert not applied_orders(reports)


@pytest.mark.parametrize("declared", [True, False])
def test_night_summary_states_the_export_order_and_warns_when_it_is_ambiguous(workspace, declared):
    """It prints the order applied where it mattered; an undeclared order is a warning of
    the night (which then ends "Completed with warnings")."""
    foreign_centre(
        workspace,
        export_date=IN_NAME if declared else "",
        files={"suivi_C02_15102017.csv": OCTOBER, "suivi_C02_01112017.csv": NOVEMBER},
    )
    _, reports = run_night(workspace, "r1")
    night = NightResult("r1", workspace, files=reports)
    about_c02 = [w for w in night.warnings() if "C02" in w]
    lines = night_summary(night).splitlines()
    if declared:
        assert about_c02 == []
        assert (
            "  ORDER   C02 follow_up: 2 exports applied in export order 15/10/2017, "
            "01/11/2017 (date from file name)"
        ) in lines
    else:
        (warning,) = about_c02
        assert warning.startswith("C02 follow_up: 2 exports in one night and no export date")
        assert f"  WARNING {warning}" in lines


@pytest.mark.parametrize(
    ("name", "detail"),
    [
        (
            "suivi_C02_31022017.csv",
            "'31022017' in the file name is not a date as forms.follow_up.export_date "
            r"(pattern '_(\d{8})\.csv$', format '%d%m%Y') says",
        ),
        (
            "suivi_C02_novembre.csv",
            "the file name does not match forms.follow_up.export_date "
            r"(pattern '_(\d{8})\.csv$', format '%d%m%Y'): rename the file",
        ),
        ("suivi_C02_01112099.csv", "01/11/2099 (from the file name) is in the future"),
    ],
)
def test_export_order_rejects_a_file_whose_name_gives_no_date(workspace, name, detail):
    """It rejects a file whose name breaks the declared date rule, naming the file, the
    pattern and the format; the centre's other files load."""
    foreign_centre(workspace, files={"suivi_C02_15102017.csv": OCTOBER, name: NOVEMBER})
    con, reports = run_night(workspace, "r1")
    (bad,) = [r for r in reports if r.file_name == name]
    assert bad.status == "rejected"
    assert bad.error.startswith("export date: ")
    assert detail in bad.error
    assert month0(con) == [5, 6]  # October's values, alone


COLUMN = """    export_date:
      {from: column, column: Extraction, format: "%d/%m/%Y %H:%M", take: TAKE}
"""


def with_extraction(text: str, *stamps: str) -> str:
    """An export with an extraction-date column, one stamp per data row."""
    header, *rows = text.splitlines()
    lines = [f"{header};Extraction"] + [f"{r};{s}" for r, s in zip(rows, stamps, strict=True)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("take", ["latest", "constant"])
def test_export_order_reads_the_date_from_a_column(workspace, take):
    """It orders by an extraction-date column (its latest date, or its one date) when the
    names carry none (``a`` sorts before ``b`` but holds the later export)."""
    later = ("02/11/2017 08:00", "02/11/2017 08:00")
    earlier = ("01/10/2017 09:00", "16/10/2017 07:30" if take == "latest" else "01/10/2017 09:00")
    foreign_centre(
        workspace,
        export_date=COLUMN.replace("TAKE", take),
        files={
            "suivi_C02_a.csv": with_extraction(NOVEMBER, *later),
            "suivi_C02_b.csv": with_extraction(OCTOBER, *earlier),
        },
    )
    con, _ = run_night(workspace, "r1")
    assert month0(con) == [6, 7]
    assert c02_changes(con) == [("nprs", "5", "7")]
    source = "column 'Extraction'" + (", its latest date" if take == "latest" else "")
    assert c02_files(con)["suivi_C02_b.csv"][1:3] == (
        dt.date(2017, 10, 16 if take == "latest" else 1),
        source,
    )


@pytest.mark.parametrize(
    ("stamps", "take", "detail"),
    [
        (
            ("01/10/2017 09:00", "16/10/2017 07:30"),
            "constant",
            "column 'Extraction' (forms.follow_up.export_date.column) holds 2 different dates "
            "(01/10/2017 to 16/10/2017) but forms.follow_up.export_date.take is 'constant'; "
            "use 'latest' if that is meant",
        ),
        (
            ("01/10/2017 09:00", "le 16 octobre"),
            "latest",
            "column 'Extraction' (forms.follow_up.export_date.column), data row 2: "
            "'le 16 octobre' is not a date (%d/%m/%Y %H:%M)",
        ),
        (
            ("NA", ""),
            "latest",
            "column 'Extraction' (forms.follow_up.export_date.column) holds no date",
        ),
    ],
)
def test_export_order_rejects_a_file_whose_column_gives_no_date(workspace, stamps, take, detail):
    """It rejects a file whose date column breaks the declared rule, saying where."""
    foreign_centre(
        workspace,
        export_date=COLUMN.replace("TAKE", take),
        files={"suivi_C02_b.csv": with_extraction(OCTOBER, *stamps)},
    )
    _, reports = run_night(workspace, "r1")
    (bad,) = [r for r in reports if r.file_name == "suivi_C02_b.csv"]
    assert bad.status == "rejected"
    assert bad.error == f"export date: {detail}"


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (
            "{from: file_name, pattern: '_\\d{8}', format: '%d%m%Y'}",
            "forms.follow_up.export_date.pattern: '_\\d{8}' needs exactly one group",
        ),
        (
            "{from: file_name, pattern: '_(\\d{8})', format: '%d%m'}",
            "forms.follow_up.export_date.format: '%d%m' lacks the year",
        ),
        ("{from: filename}", "forms.follow_up.export_date: needs 'from: file_name"),
        ("{pattern: '(x)'}", "forms.follow_up.export_date: needs 'from: file_name"),
        ("{from: column}", "forms.follow_up.export_date.column: Field required"),
        (
            "{from: column, column: patient}",
            "export_date.column: 'patient' is the patient id column, not a date",
        ),
        ("{from: column, column: X, take: max}", "forms.follow_up.export_date.take: Input"),
        ("{from: modification_time, column: X}", "export_date.column: Extra inputs"),
    ],
)
def test_export_date_option_mistakes_name_the_file_and_field(tmp_path, option, message):
    """It refuses a malformed export_date option with the file and the field."""
    path = tmp_path / "C02.yaml"
    path.write_text(MAPPING + f"    export_date: {option}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_centre_mapping(path)
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_export_date_option_keeps_the_hash_of_mappings_that_do_not_use_it(tmp_path):
    """It leaves the mapping hash of a form without export_date as it was before the option
    existed (so upgrading does not re-stage every file), and changes it when declared."""
    path = tmp_path / "C02.yaml"
    path.write_text(MAPPING, encoding="utf-8")
    plain = load_centre_mapping(path).forms["follow_up"]
    path.write_text(MAPPING + IN_NAME, encoding="utf-8")
    dated = load_centre_mapping(path).forms["follow_up"]
    assert plain.export_date is None and dated.export_date is not None
    before_the_option = "2eed30536eca53b3"  # computed by the mapping module of 8ee5a63
    assert dated.content_hash() != plain.content_hash() == before_the_option


@dataclass
class Staged:
    """What hold_late_exports needs of a staged export."""

    file: ExportFile
    full_export: bool = False


def export(name: str, day: dt.date, source: str = FROM_FILE_NAME) -> Staged:
    f = ExportFile("C02", Path(name), "follow_up", f"hash-{name}", 1, day, source)
    return Staged(f)


def test_hold_late_exports_holds_new_files_only_and_only_by_dates_from_the_data():
    """It rejects a new export older than one loaded (incremental: its rows are said not
    loaded), never a file staged again after a mapping change (the loader places those),
    nor a file dated by its modification time (a copy can change it)."""
    newer = LoadedExport("C02", "follow_up", "hash-b", "b.csv", dt.date(2017, 11, 1), "file name")
    restaged = export("a.csv", dt.date(2017, 10, 15))
    late = export("c.csv", dt.date(2017, 10, 20))
    copied = export("d.csv", dt.date(2017, 10, 21), FROM_MODIFIED)
    on_time = export("e.csv", dt.date(2017, 11, 1))
    loaded = [newer, LoadedExport("C02", "follow_up", "hash-a.csv", "a.csv", None, None)]
    held = hold_late_exports([restaged, late, copied, on_time], loaded)
    assert held[0] is restaged and held[2] is copied and held[3] is on_time
    assert isinstance(held[1], Rejection)
    assert held[1].error.startswith("late export: exported 20/10/2017 (date from file name)")
    assert held[1].error.endswith(
        "if it holds rows no later export has, ask the centre for a new export of them"
    )

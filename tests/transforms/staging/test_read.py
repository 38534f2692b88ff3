"""Reading centre exports: formats, layouts, casts and file-level rejections."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from cohortflow.errors import FileRejected
from schemas.forms import FORMS
from transforms.staging.mapping import CsvFormat, FormMapping
from transforms.staging.read import stage_file

FR = CsvFormat(delimiter=";", decimal=",", encoding="latin-1")
FR_INCLUSION = FormMapping(
    file_pattern="inclusion_*.csv",
    format=FR,
    columns={
        "patient_id": "N° patient",
        "sex": "Sexe",
        "age": "Âge",
        "weight_kg": "Poids (kg)",
        "inclusion_date": "Date d'inclusion",
    },
    codes={"sex": {"H": "M", "F": "F"}},
    date_formats={"inclusion_date": "%d/%m/%Y"},
    missing_values=["", "ND"],
)
FR_FOLLOW_UP = FormMapping(
    file_pattern="suivi_*.csv",
    format=FR,
    layout="wide",
    id_columns={"patient_id": "N° patient"},
    wide_columns={"nprs": r"EN_M(\d+)", "call_date": r"Date_M(\d+)"},
    date_formats={"call_date": "%d/%m/%Y"},
    missing_values=["", "ND"],
)
REDCAP_HEADER = "record_id,redcap_event_name,date_appel,nprs\n"
REDCAP_FOLLOW_UP = FormMapping(
    file_pattern="*_followup_*.csv",
    columns={
        "patient_id": "record_id",
        "month": "redcap_event_name",
        "call_date": "date_appel",
        "nprs": "nprs",
    },
    codes={"month": {"baseline_arm_1": "0", "month_1_arm_1": "1", "month_2_arm_1": "2"}},
)


def test_stage_file_reads_french_locale_inclusion():
    """It decodes latin-1, maps codes, reads decimal commas and dd/mm/yyyy dates."""
    text = (
        "N° patient;Sexe;Âge;Poids (kg);Date d'inclusion\n"
        "P-001;H;51;72,5;07/07/2016\n"
        "P-002;F;ND;;13/07/2016\n"
    )
    staged = stage_file(
        text.encode("latin-1"), Path("inclusion_X.csv"), FR_INCLUSION, FORMS["inclusion"]
    )
    assert staged.cast_failures.height == 0
    assert staged.frame.select(
        "patient_id", "sex", "age", "weight_kg", "inclusion_date"
    ).rows() == [
        ("P-001", "M", 51, 72.5, dt.date(2016, 7, 7)),
        ("P-002", "F", None, None, dt.date(2016, 7, 13)),
    ]
    assert staged.frame["_source_row"].to_list() == [1, 2]


def test_stage_file_melts_wide_follow_up_and_keeps_source_columns():
    """It gives one row per answered month, remembering the source column of each value."""
    text = (
        "N° patient;EN_M0;EN_M1;EN_M2;Date_M0;Date_M1;Date_M2\n"
        "P-001;7;ND;5;07/07/2016;;05/09/2016\n"
        "P-002;8;6;;13/07/2016;12/08/2016;\n"
    )
    staged = stage_file(text.encode("latin-1"), Path("suivi.csv"), FR_FOLLOW_UP, FORMS["follow_up"])
    got = staged.frame.select("_source_row", "patient_id", "month", "nprs", "_src_nprs").rows()
    assert got == [
        (1, "P-001", 0, 7, "EN_M0"),
        (1, "P-001", 2, 5, "EN_M2"),
        (2, "P-002", 0, 8, "EN_M0"),
        (2, "P-002", 1, 6, "EN_M1"),
    ]
    assert staged.frame.filter(pl.col("month") == 2)["call_date"].item() == dt.date(2016, 9, 5)


def test_stage_file_maps_redcap_events_to_months():
    text = REDCAP_HEADER + "1,baseline_arm_1,2016-07-07,7\n1,month_2_arm_1,2016-09-06,5\n"
    staged = stage_file(
        text.encode(), Path("a_followup_1.csv"), REDCAP_FOLLOW_UP, FORMS["follow_up"]
    )
    assert staged.frame.select("month", "nprs").rows() == [(0, 7), (2, 5)]


def test_stage_file_reports_values_that_cannot_be_cast():
    """A non-integer score or an impossible date is a failure with its text, never a null."""
    text = REDCAP_HEADER + "1,baseline_arm_1,2016-02-31,7\n1,month_1_arm_1,2016-08-06,6.5\n"
    staged = stage_file(
        text.encode(), Path("a_followup_1.csv"), REDCAP_FOLLOW_UP, FORMS["follow_up"]
    )
    failures = staged.cast_failures.select("_record", "column", "value").rows()
    assert sorted(failures) == [(0, "call_date", "2016-02-31"), (1, "nprs", "6.5")]


@pytest.mark.parametrize(
    ("content", "rule"),
    [
        (b"", "empty file"),
        (
            b"record_id,redcap_event_name,nprs\n1,baseline_arm_1,7\n",
            "missing required columns",
        ),
        (
            "record_id,redcap_event_name,date_appel,nprs\n1,é,2016-07-07,7\n".encode("latin-1"),
            "encoding",
        ),
    ],
)
def test_stage_file_rejects_unreadable_files_with_the_rule(content, rule):
    with pytest.raises(FileRejected) as info:
        stage_file(content, Path("x_followup_1.csv"), REDCAP_FOLLOW_UP, FORMS["follow_up"])
    assert info.value.rule == rule
    assert "x_followup_1.csv" in str(info.value)

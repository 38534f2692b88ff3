"""The plain-text profile a data manager reads: a file's format, a line per column."""

from __future__ import annotations

from tests.transforms.onboarding.samples import FR_FOLLOW_UP, write_export
from transforms.onboarding.report import profile_report


def test_profile_report_shows_format_and_one_line_per_column(tmp_path):
    """It prints each file's format and guessed form, and a line per column."""
    suivi = write_export(tmp_path, "suivi_C09_22092017.csv", FR_FOLLOW_UP, "latin-1")
    contacts = write_export(tmp_path, "contacts.csv", "id;tel\n1;0612345678\n2;0712345678\n")
    report = profile_report([suivi, contacts])
    lines = report.splitlines()
    assert lines[0] == (
        "suivi_C09_22092017.csv: CSV, delimiter ';', decimal ',', encoding latin-1; "
        "3 rows x 8 columns; looks like: follow_up"
    )
    assert len(lines) == 1 + 8 + 1 + 1 + 2
    en_m0 = next(line for line in lines if line.strip().startswith("EN_M0"))
    assert "integer" in en_m0 and "range 5 .. 8" in en_m0
    date_m1 = next(line for line in lines if line.strip().startswith("Date_M1"))
    assert "date %d/%m/%Y" in date_m1 and "missing 1/3 ('')" in date_m1
    assert "!! tel" in report and "DO NOT MAP" in report
    assert "0612345678" not in report


def test_profile_report_never_shows_an_identifier_value(tmp_path):
    """It flags an initials column loudly and prints none of its values ('J.D.')."""
    export = write_export(
        tmp_path, "inclusion.csv", "id,initials,sexe\nP1,J.D.,F\nP2,A.B.,H\nP3,J.D.,F\n"
    )
    report = profile_report([export])
    assert "!! initials" in report and "looks like initials" in report
    assert "J.D." not in report and "A.B." not in report


def test_profile_report_of_a_file_without_header_names_columns_by_position(tmp_path):
    """Its first row is data: columns are 'column N', that row's cells never shown."""
    export = write_export(
        tmp_path,
        "suivi.csv",
        "C09-0001,baseline,2016-08-14,06 12 34 56 00\nC09-0002,m1,2016-09-16,06 12 34 56 01\n",
    )
    report = profile_report([export])
    assert "2 rows x 4 columns" in report and "the first row looks like data" in report
    assert "column 1" in report and "!! column 4" in report
    for cell in ("C09-0001", "06 12 34 56 00", "baseline"):
        assert cell not in report


def test_profile_report_skips_a_file_over_the_readers_limits(tmp_path):
    """It measures before it reads, as the reader does, and says which limit."""
    export = write_export(tmp_path, "huge.csv", "a,b\n" + "x" * 1_100_000 + ",1\n")
    report = profile_report([export])
    assert report.startswith("huge.csv: not profiled: line too long: a line is 1.1 MB")


def test_profile_report_does_not_list_local_ids(tmp_path):
    """A follow-up file's id column repeats its ids: they are counted, never listed."""
    rows = "".join(f"C09-000{i},{m},{m + 3}\n" for i in (1, 2) for m in (0, 1, 2))
    export = write_export(tmp_path, "suivi.csv", "record_id,mois,nprs\n" + rows)
    report = profile_report([export])
    assert "C09-0001" not in report and "2 distinct" in report


def test_profile_report_names_a_lone_data_cell_of_a_header_by_position(tmp_path):
    """A header with one cell shaped like data (a phone) keeps its other names, not that one."""
    export = write_export(
        tmp_path,
        "contacts.csv",
        "id,06 12 34 56 00,sexe\nP1,06 12 34 56 01,F\nP2,06 12 34 56 02,H\n",
    )
    report = profile_report([export])
    assert "!! column 2" in report and "   id " in report and "the first row looks" not in report
    assert "06 12 34 56 0" not in report

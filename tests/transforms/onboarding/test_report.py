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

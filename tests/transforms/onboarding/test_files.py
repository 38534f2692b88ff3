"""One export file profiled, or the reason it was not; a centre's locale shared."""

from __future__ import annotations

import datetime as dt

import polars as pl

from tests.transforms.onboarding.samples import FR_FOLLOW_UP, write_export
from transforms.onboarding.files import harmonise_formats, profile_export, profile_file
from transforms.staging.mapping import ParquetFormat, XlsxFormat


def test_profile_file_says_why_it_did_not_profile(tmp_path):
    """It skips other kinds, empty and missing files, with the reason."""
    cases = {
        "export.xlsx": ("x", "utf-8", "unreadable XLSX: not an .xlsx workbook (a ZIP archive)"),
        "export.ods": ("x", "utf-8", "'.ods' files are not profiled: ask for CSV, XLSX or parquet"),
        "blank.csv": ("  \n", "utf-8", "empty file"),
    }
    for name, (text, encoding, reason) in cases.items():
        assert profile_file(write_export(tmp_path, name, text, encoding)).skipped == reason
    assert profile_file(tmp_path / "nope.csv").skipped.startswith("cannot read it: No such file")


def test_harmonise_formats_lends_the_centre_locale_to_a_file_without_evidence(tmp_path):
    """It gives an ASCII file without decimals the encoding and decimal mark of the others."""
    french = write_export(tmp_path, "suivi.csv", FR_FOLLOW_UP, "latin-1")
    plain = write_export(tmp_path, "ei.csv", "id;type\nP-01;nausea\n")
    assert profile_file(plain).format.encoding == "utf-8"
    _, lent = harmonise_formats([profile_file(french), profile_file(plain)])
    assert (lent.format.encoding, lent.format.decimal) == ("latin-1", ",")


def test_profile_export_profiles_each_sheet_as_the_reader_reads_it(tmp_path):
    """It profiles every sheet of a workbook (one profile each), and skips a sheet the
    reader would reject (formula cells), saying why."""
    import xlsxwriter

    path = tmp_path / "export.xlsx"
    book = xlsxwriter.Workbook(path)
    people = book.add_worksheet("Patients")
    people.write_row(0, 0, ["id", "age"])
    people.write_row(1, 0, ["P1", 50])
    book.add_worksheet("Notes")  # empty
    sums = book.add_worksheet("Totals")
    sums.write_row(0, 0, ["id", "total"])
    sums.write_row(1, 0, ["P1"])
    sums.write_formula(1, 1, "=SUM(1,2)")
    book.close()
    patients, notes, totals = profile_export(path)
    assert patients.format == XlsxFormat(sheet="Patients")
    assert (patients.label, patients.n_rows) == ("export.xlsx (sheet 'Patients')", 1)
    assert [(c.name, c.kind) for c in patients.columns] == [("id", "text"), ("age", "integer")]
    assert notes.skipped == "unreadable XLSX: empty Excel sheet"  # the reader's words
    assert totals.skipped.startswith(
        "formula cells: sheet 'Totals' has 1 cell(s) holding a formula"
    )


def test_profile_file_reads_parquet_types_as_text(tmp_path):
    """It reads a parquet file's dates, floats and booleans as the reader's text."""
    path = tmp_path / "pain.parquet"
    pl.DataFrame(
        {
            "d": [dt.date(2016, 7, 15), None],
            "w": pl.Series([62.3, 70.0], dtype=pl.Float32),
            "b": [True, False],
        }
    ).write_parquet(path)
    profile = profile_file(path)
    assert profile.format == ParquetFormat()
    columns = {c.name: c for c in profile.columns}
    assert (columns["d"].kind, columns["d"].date_format) == ("date", "%Y-%m-%d")
    assert columns["w"].kind == "decimal"
    assert columns["b"].value_counts == (("false", 1), ("true", 1))

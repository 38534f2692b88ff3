"""One export file profiled, or the reason it was not; a centre's locale shared."""

from __future__ import annotations

from tests.transforms.onboarding.samples import FR_FOLLOW_UP, write_export
from transforms.onboarding.files import harmonise_formats, profile_file


def test_profile_file_says_why_it_did_not_profile(tmp_path):
    """It skips other kinds, UTF-16, empty and missing files, with the reason."""
    cases = {
        "export.xlsx": ("x", "utf-8", "XLSX files are not profiled yet"),
        "export.csv": ("a,b\n1,2\n", "utf-16", "UTF-16 text: ask the centre for a UTF-8 export"),
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

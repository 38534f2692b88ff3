"""Each column of an export profiled: type, missing markers, dates, range, identifiers."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.transforms.onboarding.samples import text_frame
from transforms.onboarding.columns import merge_profiles, profile_table


def _by_name(profiles):
    return {p.name: p for p in profiles}


def test_profile_table_types_ranges_and_missing_markers():
    """It types each column, counts missing markers and keeps ranges and frequent values."""
    frame = text_frame(
        {
            "age": ["42", "60", "-99", "54"],
            "poids": ["70,5", "81", "ND", ""],
            "incl": ["2016-09-08", "2016-09-18", "2016-07-26", "."],
            "sexe": ["H", "F", "F", "NA"],
            "vide": ["", "NA", None, "ND"],
        }
    )
    p = _by_name(profile_table(frame))
    assert (p["age"].kind, p["age"].minimum, p["age"].maximum) == ("integer", 42, 60)
    assert (p["age"].n_missing, p["age"].missing_markers) == (1, ("-99",))
    assert (p["poids"].kind, p["poids"].decimal_comma, p["poids"].maximum) == ("decimal", True, 81)
    assert p["poids"].missing_markers == ("", "ND")
    assert (p["incl"].kind, p["incl"].date_format) == ("date", "%Y-%m-%d")
    assert p["incl"].minimum == dt.date(2016, 7, 26)
    assert (p["sexe"].kind, p["sexe"].top_values) == ("text", (("F", 2), ("H", 1)))
    assert (p["vide"].kind, p["vide"].n_missing, p["vide"].n_rows) == ("empty", 4, 4)


def test_profile_table_flags_ambiguous_day_month_dates():
    """It flags dates that read as d/m and as m/d (no day above 12), not the others."""
    frame = text_frame(
        {
            "ambiguous": ["03/04/2016", "11/12/2016", "05/06/2017"],
            "french": ["03/04/2016", "28/12/2016", "05/06/2017"],
            "american": ["04/03/2016", "12/28/2016", "06/05/2017"],
            "short": ["03/04/16", "28/12/16", "05/06/17"],
            "compact": ["20160403", "20161228", "20170605"],
        }
    )
    p = _by_name(profile_table(frame))
    assert (p["ambiguous"].date_format, p["ambiguous"].ambiguous_with) == ("%d/%m/%Y", "%m/%d/%Y")
    assert (p["french"].date_format, p["french"].ambiguous_with) == ("%d/%m/%Y", None)
    assert (p["american"].date_format, p["american"].ambiguous_with) == ("%m/%d/%Y", None)
    assert p["short"].date_format == "%d/%m/%y"
    assert (p["compact"].kind, p["compact"].date_format) == ("date", "%Y%m%d")


def test_profile_table_tolerates_a_few_bad_values():
    """It keeps the type of a column with one impossible date, and counts that value."""
    dates = [f"{d:02d}/07/2016" for d in range(13, 31)] + ["31/02/2016"]
    p = profile_table(text_frame({"d": dates}))[0]
    assert (p.kind, p.date_format, p.n_invalid) == ("date", "%d/%m/%Y", 1)


def test_profile_table_flags_direct_identifiers_and_keeps_no_values():
    """It flags phone numbers, a NIR and a birth date, and keeps none of their values."""
    frame = text_frame(
        {
            "N° patient": ["P1", "P2", "P3"],
            "contact": ["06 12 34 56 78", "0712345678", "+33 6 12 34 56 70"],
            "numero": ["1850775123456", "285077512345612", "1850775123457"],
            "date_naissance": ["01/02/1960", "03/04/1970", "05/06/1980"],
            "DateNaissance": ["01/02/1960", "03/04/1970", "05/06/1980"],
            "nprs": ["7", "8", "5"],
        }
    )
    p = _by_name(profile_table(frame))
    assert p["contact"].identifier == "a phone number"
    assert p["numero"].identifier == "a social security number"
    assert p["date_naissance"].identifier == "a birth date"
    assert p["DateNaissance"].identifier == "a birth date"
    assert p["N° patient"].identifier is None and p["nprs"].identifier is None
    assert all(p[c].value_counts == () and p[c].minimum is None for c in ("contact", "numero"))


def test_merge_profiles_reads_a_wide_family_as_one_column():
    """It adds up the counts of EN_M0..EN_M2 and keeps their common type and values."""
    frame = text_frame({"EN_M0": ["7", "8"], "EN_M1": ["6", None], "EN_M2": ["ND", "7"]})
    merged = merge_profiles("nprs", profile_table(frame))
    assert (merged.name, merged.kind, merged.n_rows, merged.n_missing) == ("nprs", "integer", 6, 2)
    assert merged.value_counts == (("7", 2), ("8", 1), ("6", 1))


def test_profile_table_flags_exactly_what_the_reader_rejects():
    """It uses the reader's policy: the same columns flagged, the same kinds, no values."""
    from transforms.staging.identifiers import direct_identifier_columns

    frame = text_frame(
        {
            "Date naiss.": ["01/02/1960", "03/04/1970"],
            "date_nais": ["1960", "1970"],
            "birthday": ["01/02", "03/04"],
            "initials": ["J.D.", "A.B."],
            "identite": ["DUPONT Jean", "MARTIN Anne"],
            "contact": ["+33 6 12 34 56 78", "0033 7 12 34 56 78"],
            "Diagnostic": ["fibromyalgie", "SDRC"],
        }
    )
    flagged = {p.name: p.identifier for p in profile_table(frame) if p.identifier}
    assert flagged == direct_identifier_columns(frame)
    assert set(flagged) == set(frame.columns) - {"Diagnostic"}
    initials = _by_name(profile_table(frame))["initials"]
    assert (initials.n_rows, initials.n_missing, initials.value_counts) == (2, 0, ())


@pytest.mark.parametrize(
    ("values", "fmt"),
    [
        (["15-Jul-2016", "01-Aug-2016"], "%d-%b-%Y"),
        (["15-JUL-16", "01-AUG-16"], "%d-%b-%y"),
        (["15 juil. 2016", "1 août 2016", "3 févr. 2017"], "%d %b %Y"),
        (["15 juillet 2016", "1 août 2016"], "%d %B %Y"),
        (["Jul 15, 2016", "Aug 1, 2016"], "%b %d, %Y"),
        (["July 15, 2016", "August 1, 2016"], "%B %d, %Y"),
        (["2016/10/01", "2017/01/02"], "%Y/%m/%d"),
        (["2016-10-01T08:00:00", "2017-01-02T15:15:00"], "%Y-%m-%dT%H:%M:%S"),
        (["2016-10-01 00:00:00", "2017-01-02"], "%Y-%m-%d"),
    ],
)
def test_profile_table_reads_month_names_in_english_and_french(values, fmt):
    """It recognises dates with month names (any case, dot or not, accents or not) and
    date-times, by the format the staging reader reads them with."""
    p = profile_table(text_frame({"d": values}))[0]
    assert (p.kind, p.date_format, p.n_invalid) == ("date", fmt, 0)
    assert p.minimum.year == 2016


def test_profile_table_decides_day_or_month_first_by_the_values():
    """A first field over 12 says day first, a second field over 12 month first."""
    p = _by_name(
        profile_table(
            text_frame(
                {
                    "day_first": ["13-02-2017", "01-02-2017"],
                    "month_first": ["02-13-2017", "02-01-2017"],
                    "either": ["01-02-2017", "03-04-2017"],
                }
            )
        )
    )
    assert (p["day_first"].date_format, p["day_first"].ambiguous_with) == ("%d-%m-%Y", None)
    assert (p["month_first"].date_format, p["month_first"].ambiguous_with) == ("%m-%d-%Y", None)
    assert p["either"].ambiguous_with == "%m-%d-%Y"


def test_profile_table_keeps_a_birth_dates_format_and_nothing_else():
    """Of a birth date column it keeps the format (an age may be derived from it), and
    neither a value, a range nor a count of values."""
    frame = text_frame(
        {"Date of birth": ["15-Jul-1960", "02-Feb-1971", "NA"], "x": ["1", "2", "3"]}
    )
    p = _by_name(profile_table(frame))["Date of birth"]
    assert (p.identifier, p.kind, p.date_formats) == ("a birth date", "date", ("%d-%b-%Y",))
    assert (p.minimum, p.maximum, p.value_counts, p.n_distinct) == (None, None, (), 0)
    assert "1960" not in repr(p) and "1971" not in repr(p)


def test_profile_table_types_times_of_day():
    """It types '09:30' and '14:05:00' as times (a rank's time column)."""
    p = profile_table(text_frame({"Heure": ["09:30", "14:05:00", "8:15"]}))[0]
    assert p.kind == "time"

"""What a matched column's values need in the mapping: date formats, codes, months."""

from __future__ import annotations

import pytest

from tests.transforms.onboarding.samples import text_frame
from transforms.onboarding.codes import advise_values
from transforms.onboarding.columns import profile_table


def _profile(values: list[str | None]):
    return profile_table(text_frame({"v": values}))[0]


def test_advise_values_month_numbers_from_event_names():
    """It reads month numbers from visit names and lists the names it cannot read."""
    advice = advise_values("follow_up", "month", _profile(["J0", "M3", "Mois 12", "fin"]))
    assert advice.codes == {"J0": "0", "M3": "3", "Mois 12": "12"}
    assert advice.unresolved == ["fin"]
    assert advice.todo == ["TODO: codes.month: no month number found in ['fin']"]


def test_advise_values_numeric_codes_guessed_in_canonical_order():
    """It guesses numeric codes from 1 in the schema's order, and says it guessed."""
    advice = advise_values("ketamine", "route", _profile(["1", "2", "1"]))
    assert list(advice.codes) == ["1", "2", "3", "4", "5"]
    assert advice.codes["1"] == "iv"
    assert advice.notes["codes.route"].startswith("TODO-check: guessed in canonical order from 1")


def test_advise_values_date_format_other_than_iso():
    """It proposes a date format only when it is not the reader's ISO default."""
    french = advise_values("inclusion", "inclusion_date", _profile(["28/07/2016", "08/09/2016"]))
    iso = advise_values("inclusion", "inclusion_date", _profile(["2016-07-28", "2016-09-08"]))
    assert (french.date_format, iso.date_format) == ("%d/%m/%Y", None)
    assert french.notes == {} and iso.todo == []


def test_advise_values_codes_by_a_word_of_the_value_are_marked_guesses():
    """It codes 'CRPS type I' as crps and 'Other chronic pain' as other, saying it guessed."""
    values = ["CRPS type I", "Other chronic pain", "Fibromyalgia", "Migraine or headache"]
    advice = advise_values("inclusion", "pain_diagnosis", _profile(values))
    assert advice.codes == {
        "CRPS type I": "crps",
        "Fibromyalgia": "fibromyalgia",
        "Other chronic pain": "other",
    }
    assert advice.unresolved == ["Migraine or headache"]
    assert (
        "TODO-check: codes.pain_diagnosis: guessed by a word: 'CRPS type I' -> crps, "
        "'Other chronic pain' -> other"
    ) in advice.todo


def test_advise_values_sex_from_a_yes_no_column_named_for_one_sex():
    """It codes is_male true/false as M/F, and leaves a yes/no column of no sex alone."""
    advice = advise_values(
        "inclusion", "sex", profile_table(text_frame({"is_male": ["true", "false"]}))[0]
    )
    assert advice.codes == {"false": "F", "true": "M"}
    assert advice.notes["codes.sex"] == "TODO-check: 'is_male' says yes for M, no for F"
    female = profile_table(text_frame({"Femme": ["oui", "non", "oui"]}))[0]
    assert advise_values("inclusion", "sex", female).codes == {"non": "M", "oui": "F"}


def test_advise_values_month_numbers_from_visit_numbers():
    """It reads V0..V12 as months 0..12, for a person to check."""
    advice = advise_values("follow_up", "month", _profile(["V0", "V3", "Visite 12"]))
    assert advice.codes == {"V0": "0", "V3": "3", "Visite 12": "12"}
    assert advice.notes["codes.month"].startswith("TODO-check")


@pytest.mark.parametrize(
    ("values", "fmt", "note"),
    [
        (["42566", "42583"], "excel", "Excel day numbers (2016-07-15 to 2016-08-01)"),
        (["15-Jul-2016", "01-Aug-2016"], "%d-%b-%Y", None),
    ],
)
def test_advise_values_excel_day_numbers_and_month_names(values, fmt, note):
    """It reads Excel day numbers of plausible dates as 'excel', month names as %b."""
    advice = advise_values("ketamine", "administration_date", _profile(values))
    assert advice.date_format == fmt
    assert (
        (note in advice.notes.get("date_formats.administration_date", ""))
        if note
        else (advice.notes == {})
    )


def test_advise_values_small_numbers_are_no_excel_dates():
    """It does not read a column of small numbers (a month, a score) as Excel dates."""
    advice = advise_values("ketamine", "administration_date", _profile(["3", "12"]))
    assert advice.date_format is None
    assert advice.todo == [
        "TODO: administration_date: the values do not look like dates: check them"
    ]

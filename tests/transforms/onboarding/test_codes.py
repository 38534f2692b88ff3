"""What a matched column's values need in the mapping: date formats, codes, months."""

from __future__ import annotations

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

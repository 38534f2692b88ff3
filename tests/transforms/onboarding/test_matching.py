"""A profiled file matched to a canonical form: its columns, layout, codes and units."""

from __future__ import annotations

import pytest

from tests.transforms.onboarding.samples import (
    FR_FOLLOW_UP,
    REDCAP_FOLLOW_UP,
    REDCAP_INCLUSION,
    text_frame,
    write_export,
)
from transforms.onboarding.columns import profile_table
from transforms.onboarding.files import profile_file
from transforms.onboarding.matching import guess_form, suggest_mapping


def test_suggest_mapping_french_wide_follow_up(tmp_path):
    """It finds the wide layout: id column, month-suffixed families and their date format."""
    path = write_export(tmp_path, "suivi_C09_22092017.csv", FR_FOLLOW_UP, "latin-1")
    suggestion = suggest_mapping(profile_file(path).columns, "follow_up")
    mapping = suggestion["mapping"]
    assert mapping["layout"] == "wide"
    assert mapping["id_columns"] == {"patient_id": "N° patient"}
    assert mapping["wide_columns"] == {"nprs": r"EN_M(\d+)", "call_date": r"Date_M(\d+)"}
    assert mapping["date_formats"] == {"call_date": "%d/%m/%Y"}
    assert mapping["missing_values"] == ["", "NA", "ND"]
    assert suggestion["unmapped"] == {
        "Poids (kg)": "no canonical column recognised: leave it out or map it"
    }
    assert suggestion["unmatched"] == [] and suggestion["score"] == 3


def test_suggest_mapping_redcap_long_follow_up_and_inclusion(tmp_path):
    """It maps REDCap columns, reads months from event names and guesses sex codes 1/2."""
    follow_up = profile_file(write_export(tmp_path, "C09_followup.csv", REDCAP_FOLLOW_UP))
    suggestion = suggest_mapping(follow_up.columns, "follow_up")
    assert suggestion["mapping"]["columns"] == {
        "patient_id": "record_id",
        "month": "redcap_event_name",
        "call_date": "date_appel",
        "nprs": "nprs",
    }
    assert suggestion["mapping"]["codes"] == {
        "month": {"baseline_arm_1": "0", "month_1_arm_1": "1", "month_12_arm_1": "12"}
    }
    assert suggestion["mapping"]["date_formats"] == {}  # ISO: the reader's default
    inclusion = profile_file(write_export(tmp_path, "C09_inclusion.csv", REDCAP_INCLUSION))
    suggestion = suggest_mapping(inclusion.columns, "inclusion")
    assert suggestion["mapping"]["columns"]["weight_kg"] == "weight"
    assert suggestion["mapping"]["codes"] == {"sex": {"1": "M", "2": "F"}}
    assert suggestion["notes"]["codes.sex"].startswith("TODO-check")
    assert suggestion["unmatched"] == ["pain_diagnosis"]


@pytest.mark.parametrize(
    ("values", "codes"),
    [
        (["Homme", "Femme", "femme"], {"Femme": "F", "Homme": "M", "femme": "F"}),
        (["H", "F"], {"F": "F", "H": "M"}),
        (["M", "F"], {}),  # already canonical: no codes needed
    ],
)
def test_suggest_mapping_sex_codes_from_french_and_english_values(values, codes):
    """It translates Homme/Femme and H/F to M/F, and leaves canonical codes alone."""
    frame = text_frame({"Identifiant": [f"P{i}" for i in range(len(values))], "Sexe": values})
    suggestion = suggest_mapping(profile_table(frame), "inclusion")
    assert suggestion["mapping"]["codes"].get("sex", {}) == codes


def test_suggest_mapping_units_and_unknown_codes():
    """It reads a unit from the header and lists values it cannot translate."""
    frame = text_frame(
        {
            "Identifiant": ["Z1", "Z2", "Z3"],
            "Poids (lb)": ["154,3", "160", "-99"],
            "Pathologie": ["Fibromyalgie", "SDRC", "Migraine"],
        }
    )
    suggestion = suggest_mapping(profile_table(frame), "inclusion")
    mapping = suggestion["mapping"]
    assert mapping["columns"]["weight_kg"] == "Poids (lb)"
    assert mapping["units"] == {"weight_kg": "lb"}
    assert mapping["codes"] == {"pain_diagnosis": {"Fibromyalgie": "fibromyalgia", "SDRC": "crps"}}
    assert suggestion["unresolved_codes"] == {"pain_diagnosis": ["Migraine"]}


def test_suggest_mapping_never_maps_direct_identifiers():
    """It leaves identifier columns out even when their name matches a canonical column."""
    frame = text_frame(
        {
            "patient": ["P1", "P2"],
            "Nom": ["Dupont", "Martin"],
            "telephone": ["0612345678", "0712345678"],
            "Date de naissance": ["01/02/1960", "03/04/1970"],
            "Sexe": ["F", "M"],
        }
    )
    suggestion = suggest_mapping(profile_table(frame), "inclusion")
    assert suggestion["mapping"]["columns"] == {"patient_id": "patient", "sex": "Sexe"}
    assert suggestion["identifiers"] == {
        "Nom": "DO NOT MAP: looks like a name",
        "telephone": "DO NOT MAP: looks like a phone number",
    }
    # the birth date is read only to derive the age (its values are never kept)
    assert suggestion["mapping"]["derived"]["age"]["column"] == "Date de naissance"
    assert (
        "TODO: age: the age is at inclusion_date, which is not mapped: map it"
        in (suggestion["todo"])
    )


def test_suggest_mapping_numbered_questionnaire_items():
    """It maps REDCap HADS items in questionnaire order and SF-12 items by number."""
    hads = text_frame({"record_id": ["1"], "hads_q1": ["2"], "hads_q2": ["1"], "hads_q14": ["0"]})
    columns = suggest_mapping(profile_table(hads), "hads")["mapping"]["columns"]
    assert columns == {
        "patient_id": "record_id",
        "hads_a1": "hads_q1",
        "hads_d1": "hads_q2",
        "hads_d7": "hads_q14",
    }
    sf12 = text_frame({"N° patient": ["1"], "Mois": ["0"], "SF12_Q1": ["3"], "SF12_Q12": ["2"]})
    columns = suggest_mapping(profile_table(sf12), "sf12")["mapping"]["columns"]
    assert (columns["gh1"], columns["sf2"], columns["month"]) == ("SF12_Q1", "SF12_Q12", "Mois")


def test_guess_form_by_file_name_then_by_columns(tmp_path):
    """It takes the form a file is named after when its columns agree, else the best match."""
    named = write_export(tmp_path, "suivi_C09_22092017.csv", FR_FOLLOW_UP, "latin-1")
    unnamed = write_export(tmp_path, "export_1.csv", REDCAP_INCLUSION)
    notes = write_export(tmp_path, "inclusion_notes.csv", "texte\nrien\n")
    assert guess_form(profile_file(named)) == "follow_up"
    assert guess_form(profile_file(unnamed)) == "inclusion"
    assert guess_form(profile_file(notes)) is None

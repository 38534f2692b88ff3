"""Every form one file holds, and what the drafts compute rather than copy."""

from __future__ import annotations

import yaml

from tests.transforms.onboarding.samples import write_export
from transforms.onboarding.draft import draft_mapping_yaml
from transforms.onboarding.files import profile_file
from transforms.onboarding.forms import forms_of_file
from transforms.onboarding.items import numbered_item


def _forms(tmp_path, name: str, text: str) -> dict:
    return forms_of_file(profile_file(write_export(tmp_path, name, text)))


def test_forms_of_file_needs_more_than_one_lone_column(tmp_path):
    """A weight or a date beside another form's columns is no form; Q1..Q5 are no HADS."""
    text = "patient;EN_M0;EN_M1;Poids;Q1;Q2;Q3;Q4;Q5\nP1;5;4;70;1;2;1;0;3\nP2;6;;80;0;1;2;3;1\n"
    assert list(_forms(tmp_path, "suivi.csv", text)) == ["follow_up"]


def test_forms_of_file_takes_each_column_for_one_form_only(tmp_path):
    """The inclusion, wide pain and HADS items of a patients file are three forms, each
    listing as TODO only the columns no form took."""
    items = ";".join(f"Q{n}" for n in range(1, 15))
    text = f"N° patient;Sexe;Âge;Remarque;EN_M0;EN_M1;{items}\n"
    text += "P1;F;50;ok;5;4;" + ";".join(["1"] * 14) + "\n"
    forms = _forms(tmp_path, "patients.csv", text)
    assert list(forms) == ["inclusion", "hads", "follow_up"]
    for suggestion in forms.values():
        assert set(suggestion["unmapped"]) <= {"Remarque"}
    assert forms["hads"]["mapping"]["columns"]["patient_id"] == "N° patient"
    assert forms["follow_up"]["mapping"]["id_columns"] == {"patient_id": "N° patient"}


def test_forms_of_file_shares_the_visit_column_of_a_long_file(tmp_path):
    """A visits file with the pain and the HADS items of each visit: both forms read its
    visit column; the HADS rows of the visits without answers are no record."""
    items = "|".join(f"HADS{n:02d}" for n in range(1, 15))
    text = f"Subject|Visit|Douleur_EN|{items}\n"
    text += "S1|V0|7|" + "|".join(["2"] * 14) + "\n"
    text += "".join(f"S1|V{m}|{9 - m}|" + "|".join(["."] * 14) + "\n" for m in range(1, 5))
    forms = _forms(tmp_path, "visites.txt", text)
    assert set(forms) == {"follow_up", "hads"}
    assert forms["follow_up"]["mapping"]["columns"]["month"] == "Visit"
    assert forms["hads"]["mapping"]["columns"]["month"] == "Visit"
    assert forms["hads"]["mapping"]["columns"]["hads_a1"] == "HADS01"
    assert forms["hads"]["mapping"]["empty_rows"] == "skip"
    assert "empty_rows" not in forms["follow_up"]["mapping"]
    assert forms["hads"]["notes"]["empty_rows"].startswith(
        "TODO-check: each item is empty on 4 or more of 5 rows"
    )


def test_draft_of_two_files_holding_one_form_keeps_one_and_says_so(tmp_path):
    """Two inclusion files: the one that shows the form most is drafted, the other a TODO."""
    full = write_export(tmp_path, "inclusion_a.csv", "id;sexe;age;poids\nP1;F;50;70\n")
    thin = write_export(tmp_path, "inclusion_b.csv", "id;sexe\nP2;M\n")
    text = draft_mapping_yaml("C50", [thin, full])
    assert yaml.safe_load(text)["forms"]["inclusion"]["file_pattern"] == "inclusion_a.csv"
    assert (
        "# TODO: inclusion_b.csv also looks like inclusion (drafted from inclusion_a.csv): "
        "one file pattern per form" in text
    )


def test_draft_weight_unit_per_row_and_dose_in_the_wrong_unit(tmp_path):
    """A unit column beside the weight is drafted per row; doses all under 5 'mg' are
    flagged as the classic mg/kg-read-as-mg error."""
    patients = write_export(
        tmp_path,
        "inclusion.csv",
        "id,sex,age,weight,unit,inclusion date\nP1,F,50,154,lb,2016-07-15\n"
        "P2,M,60,80,kg,2016-07-16\n",
    )
    doses = write_export(
        tmp_path,
        "ketamine.csv",
        "id,seq,date,dose\nP1,1,2016-07-15,0.5\nP2,1,2016-07-16,1.5\n",
    )
    text = draft_mapping_yaml("C51", [patients, doses])
    forms = yaml.safe_load(text)["forms"]
    assert forms["inclusion"]["units"] == {"weight_kg": {"column": "unit"}}
    assert (
        "TODO-check: dose_mg: every dose in 'dose' is under 5 (0.5 to 1.5): doses per kg? "
        "map it as dose_mg_per_kg" in text
    )


def test_draft_joins_a_number_that_restarts_in_each_site(tmp_path):
    """A patient number that repeats in the inclusion file beside a site column is joined
    with the site, in every form of the centre that reads both."""
    inclusion = write_export(
        tmp_path,
        "KS_INCL.txt",
        "Site|Subject|Sexe|Âge\n01|0003|F|75\n01|0004|M|28\n03|0004|F|51\n",
    )
    visits = write_export(
        tmp_path, "KS_SUIVI.txt", "Site|Subject|Mois|EN\n01|0003|0|7\n03|0004|0|6\n"
    )
    forms = yaml.safe_load(draft_mapping_yaml("C52", [inclusion, visits]))["forms"]
    joined = {"from": "join", "columns": ["Site", "Subject"], "separator": "-"}
    assert forms["inclusion"]["derived"]["patient_id"] == joined
    assert forms["follow_up"]["derived"]["patient_id"] == joined
    assert "patient_id" not in forms["inclusion"]["columns"]
    assert "patient_id" not in forms["follow_up"]["columns"]


def test_draft_of_an_unknown_split_id_says_so(tmp_path):
    """No patient id column and no site/number pair: a TODO, no guess."""
    export = write_export(tmp_path, "inclusion.csv", "code_a;code_b;sexe;age\n1;2;F;50\n")
    text = draft_mapping_yaml("C53", [export])
    assert "derived" not in yaml.safe_load(text)["forms"]["inclusion"]
    assert "# TODO: no patient id column recognised; if several columns identify a patient" in (
        text
    )


def test_numbered_item_reads_the_ways_centres_number_questionnaires():
    """It reads HADS anx/dep names, numbered questions and the SF-12's own numbering."""
    assert numbered_item("hads", "hads_anx_3") == "hads_a3"
    assert numbered_item("hads", "HADS_DEP_7") == "hads_d7"
    assert numbered_item("hads", "HADS04") == "hads_d2"
    assert numbered_item("hads", "3. J'ai une sensation de peur") == "hads_a2"
    assert numbered_item("hads", "Q15") is None
    assert numbered_item("sf12", "Q5") == "rp3"  # fifth item in questionnaire order
    assert numbered_item("sf12", "q5_pain_interf", sf12_lettered=True) == "bp2"  # question 5
    assert numbered_item("sf12", "q2b_climb_stairs", sf12_lettered=True) == "pf04"
    assert numbered_item("sf12", "q6c_downhearted", sf12_lettered=True) == "mh4"


def test_forms_of_file_says_when_numbered_items_read_as_two_questionnaires(tmp_path):
    """Q1..Q12 read as the 12 SF-12 items and as 12 of the HADS items: the draft says so."""
    text = "id;" + ";".join(f"Q{n}" for n in range(1, 13)) + "\nP1;" + ";".join(["1"] * 12)
    forms = _forms(tmp_path, "questionnaire.csv", text + "\n")
    assert list(forms) == ["sf12"]
    assert (
        "TODO-check: these columns read as well as hads: which form are they?"
        in (forms["sf12"]["todo"])
    )


def test_draft_sf12_answers_in_words_share_a_map_only_when_scored_alike(tmp_path):
    """The four yes/no items share one value map; general health has its own."""
    header = "id;month;" + ";".join(f"Q{n}" for n in range(1, 13))
    rows = [
        "P1;0;Good;1;1;Yes;No;No;Yes;2;3;3;4;2",
        "P2;0;Poor;2;3;No;Yes;Yes;No;4;1;6;2;5",
    ]
    export = write_export(tmp_path, "sf12.csv", "\n".join([header, *rows]) + "\n")
    form = yaml.safe_load(draft_mapping_yaml("C54", [export]))["forms"]["sf12"]
    yes_no = {form["codes"][item] for item in ("rp2", "rp3", "re2", "re3")}
    assert len(yes_no) == 1
    assert form["value_maps"][yes_no.pop()] == {"Yes": 1, "No": 2}
    assert form["value_maps"][form["codes"]["gh1"]] == {
        "Excellent": 1,
        "Very good": 2,
        "Good": 3,
        "Fair": 4,
        "Poor": 5,
    }
    assert "bp2" not in form["codes"]  # numbers: no map

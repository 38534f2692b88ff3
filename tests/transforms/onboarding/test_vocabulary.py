"""The profiler's vocabulary: a data file of names and codes, checked against the schemas."""

from __future__ import annotations

import pydantic
import pytest

from schemas.forms import FORMS
from transforms.onboarding.vocabulary import (
    ANSWER_INDEX,
    COLUMN_INDEX,
    VOCABULARY,
    load_vocabulary,
    name_key,
)


def _allowed_codes(column: str) -> set[str]:
    """The canonical codes of a coded column, from the isin check of a form that has it."""
    for form in FORMS.values():
        schema = form.schema.to_schema().columns
        if column in schema:
            for check in schema[column].checks:
                if check.name == "isin":
                    return set(check.statistics["allowed_values"])
    return set()


def test_vocabulary_names_only_canonical_columns_codes_and_forms():
    """It lists synonyms for canonical columns, codes each column allows, and every form."""
    canonical = {c for form in FORMS.values() for c in form.columns()}
    assert set(VOCABULARY.columns) <= canonical
    for column, codes in VOCABULARY.codes.items():
        assert set(codes) <= _allowed_codes(column), column
    assert set(VOCABULARY.form_name_hints) == set(FORMS)


def test_column_index_maps_form_names_and_synonyms_per_form():
    """It maps a form's own column names and their synonyms, only in forms that have them."""
    assert COLUMN_INDEX["inclusion"]["patientid"] == "patient_id"
    assert COLUMN_INDEX["inclusion"][name_key("N° patient")] == "patient_id"
    assert COLUMN_INDEX["follow_up"][name_key("EN")] == "nprs"
    assert name_key("EN") not in COLUMN_INDEX["inclusion"]


def test_load_vocabulary_refuses_a_word_yaml_reads_as_another_type(tmp_path):
    """It refuses an unquoted -99 or 'no' (YAML reads a number and a boolean)."""
    path = tmp_path / "v.yaml"
    path.write_text(
        "missing_markers: ['', -99]\ncolumns: {}\ncodes: {}\nform_name_hints: {}\n"
        "baseline_words: [no]\nunit_words: {}\nanswers: {}\nsplit_patient_id: {}\n"
        "date_words: []\ndate_hints: {}\nsex_flags: {}\n",
        encoding="utf-8",
    )
    with pytest.raises(pydantic.ValidationError) as error:
        load_vocabulary(path)
    assert {e["loc"][0] for e in error.value.errors()} == {"missing_markers", "baseline_words"}


def test_load_vocabulary_refuses_answers_outside_the_items_scores(tmp_path):
    """It refuses an answer scored 4 for a HADS item (0-3) and an answer for a non-item."""
    base = (
        "missing_markers: []\ncolumns: {}\ncodes: {}\nform_name_hints: {}\n"
        "baseline_words: []\nunit_words: {}\nsplit_patient_id: {}\n"
        "date_words: []\ndate_hints: {}\nsex_flags: {}\n"
    )
    path = tmp_path / "v.yaml"
    path.write_text(base + "answers: {hads_a1: {en: {4: [Always]}}}\n", encoding="utf-8")
    with pytest.raises(pydantic.ValidationError, match=r"answers.hads_a1.en: score\(s\) \[4\]"):
        load_vocabulary(path)
    path.write_text(base + "answers: {nprs: {en: {1: [Low]}}}\n", encoding="utf-8")
    with pytest.raises(pydantic.ValidationError, match="answers.nprs: not an item of hads"):
        load_vocabulary(path)


def test_answer_index_scores_each_hads_item_by_its_own_wording():
    """It scores 'Not at all' 0 for A1 and 3 for D2 (a reverse-worded item), in EN and FR."""
    assert ANSWER_INDEX["hads_a1"][name_key("Not at all")] == 0
    assert ANSWER_INDEX["hads_d2"][name_key("Not at all")] == 3
    assert ANSWER_INDEX["hads_a4"][name_key("Jamais")] == 3
    assert ANSWER_INDEX["hads_a1"][name_key("Jamais")] == 0
    assert ANSWER_INDEX["rp2"][name_key("Yes")] == 1
    hads = [item for item in ANSWER_INDEX if item.startswith("hads_")]
    assert len(hads) == 14
    for item in hads:  # every HADS item has its four answers in both languages
        assert sorted(set(ANSWER_INDEX[item].values())) == [0, 1, 2, 3], item

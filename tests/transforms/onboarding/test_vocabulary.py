"""The profiler's vocabulary: a data file of names and codes, checked against the schemas."""

from __future__ import annotations

import pydantic
import pytest

from schemas.forms import FORMS
from transforms.onboarding.vocabulary import (
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
        "baseline_words: [no]\nunit_words: {}\n",
        encoding="utf-8",
    )
    with pytest.raises(pydantic.ValidationError) as error:
        load_vocabulary(path)
    assert {e["loc"][0] for e in error.value.errors()} == {"missing_markers", "baseline_words"}

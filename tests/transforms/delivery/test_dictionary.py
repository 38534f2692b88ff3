"""The data dictionary is generated from the code and the committed copy is current."""

from __future__ import annotations

from pathlib import Path

from schemas.forms import FORMS
from transforms.delivery.dictionary import data_dictionary

COMMITTED = Path(__file__).resolve().parents[3] / "docs" / "data_dictionary.md"


def test_data_dictionary_documents_every_table_and_column():
    text = data_dictionary()
    for form in FORMS.values():
        assert f"### `{form.table}`" in text
        for column in form.columns():
            if column != "patient_id":  # never stored: replaced by patient_key
                assert f"| `{column}` |" in text, (form.table, column)
    assert "patient_id" not in text
    assert (
        "| `nprs` | BIGINT | NO | greater_than_or_equal_to(0), less_than_or_equal_to(10) |" in text
    )


def test_committed_data_dictionary_is_current():
    """docs/data_dictionary.md is `make docs` output: regenerate it after a schema change."""
    assert COMMITTED.read_text(encoding="utf-8") == data_dictionary()

"""Every pullable column says its label, unit, codes and how it was derived."""

from __future__ import annotations

import pytest

from transforms import warehouse
from transforms.delivery.catalogue import PULLABLE, dataset
from transforms.delivery.columns import column_docs
from transforms.derived import views


@pytest.fixture(scope="module")
def empty_tables():
    """Every table of a fresh warehouse (no rows: the columns are what count)."""
    con = warehouse.connect(":memory:")
    tables = warehouse.current_tables(con)
    con.close()
    return tables


@pytest.mark.parametrize("table", PULLABLE)
def test_column_docs_label_every_pullable_column_within_statas_limit(empty_tables, table):
    """It gives each column a label other than its name, a description and a derivation,
    and a variable label Stata accepts (80 characters) without cutting it."""
    docs = column_docs(table)
    for name in dataset(empty_tables, table).columns:
        doc = docs[name]
        assert doc.label and doc.label != name, (table, name)
        assert doc.description and doc.derivation, (table, name)
        assert len(doc.variable_label()) <= 80 and not doc.variable_label().endswith("...")


def test_column_docs_say_units_codes_and_derivations():
    """It reads units from the labels, codes from the schema's checks, and tells a collected
    column from a derived one."""
    patients, per_patient = column_docs("patients"), column_docs("analysis_patients")
    weight = patients["weight_kg"]
    assert (weight.label, weight.unit) == ("Weight at inclusion", "kg")
    assert patients["pain_diagnosis"].codes == ("neuropathic", "fibromyalgia", "crps", "other")
    assert patients["age"].derivation.startswith("collected (inclusion form")
    assert per_patient["nprs_change"].derivation.startswith("derived from the harmonised tables")
    assert per_patient["nprs_change"].description == "nprs_one_year - nprs_baseline"
    assert per_patient["total_dose_mg"].variable_label() == "Ketamine dose over the first year, mg"


def test_derived_labels_cover_every_derived_column():
    assert set(views.DERIVED_LABELS) == set(views.DERIVED_COLUMNS)

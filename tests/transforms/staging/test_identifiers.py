"""The one identifier policy (reader and profiler): by column name and by content."""

from __future__ import annotations

import polars as pl
import pytest

from transforms.staging.identifiers import (
    IdentifierColumn,
    direct_identifier_columns,
    find_identifier_columns,
    identifier_by_name,
)


def test_direct_identifier_columns_by_name_and_content():
    frame = pl.DataFrame(
        {
            "N° patient": ["P1", "P2"],
            "Nom": ["Dupont", "Martin"],
            "Téléphone": ["", ""],
            "contact": ["06 12 34 56 78", "0612345678"],
            "x": ["1 84 12 75 123 456 78", "2841275123456"],
            "Date de naissance": ["01/02/1960", "03/04/1970"],
            "mail": ["a@b.fr", None],
            "redcap_event_name": ["baseline_arm_1", "month_1_arm_1"],
            "Nom du centre": ["CHU", "CHU"],
            "nprs": ["7", "8"],
        }
    )
    assert direct_identifier_columns(frame) == {
        "Nom": "a name",
        "Téléphone": "a phone number",
        "contact": "a phone number",
        "x": "a social security number",
        "Date de naissance": "a birth date",
        "mail": "an e-mail address",
    }


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("Date naiss.", "a birth date"),
        ("date_nais", "a birth date"),
        ("DDN", "a birth date"),
        ("birthday", "a birth date"),
        ("dob", "a birth date"),
        ("Année de naissance", "a birth date"),  # a partial birth date
        ("dateofbirth", "a birth date"),
        ("initials", "initials"),
        ("Initiales patient", "initials"),
        ("Identité", "a name"),
        ("NOM", "a name"),
        ("Prénom", "a name"),
        ("patientFirstName", "a name"),
        ("surname", "a name"),
        ("Téléphone", "a phone number"),
        ("tel", "a phone number"),
        ("Portable", "a phone number"),
        ("phone_number", "a phone number"),
        ("e-mail", "an e-mail address"),
        ("mail", "an e-mail address"),
        ("Adresse postale", "an address"),
        ("address_line_1", "an address"),
        ("code postal", "an address"),
        ("NIR", "a social security number"),
        ("numéro sécu", "a social security number"),
        ("SSN", "a social security number"),
    ],
)
def test_identifier_by_name_recognises_french_and_english_names(name, kind):
    assert identifier_by_name(name) == kind


@pytest.mark.parametrize(
    "name",
    [
        "record_id",
        "redcap_event_name",
        "Nom du centre",
        "drug name",
        "N° patient",
        "Date d'inclusion",
        "connaissance du traitement",  # holds 'naissance', is not one
        "EN_M0",
        "Poids (kg)",
        "initial_dose",
        "telemedecine",
        "Diagnostic",
    ],
)
def test_identifier_by_name_leaves_study_columns_alone(name):
    assert identifier_by_name(name) is None


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        (["06 12 34 56 78", "0612345678", "06.12.34.56.78"], "a phone number"),
        (["+33 6 12 34 56 78", "+33612345678", "+33 (0)6 12 34 56 78"], "a phone number"),
        (["0033 6 12 34 56 78", "+44 20 7946 0958", "+1 (212) 555-0100"], "a phone number"),
        (["1 84 12 75 123 456 78", "2841275123456", "184122A123456"], "a social security number"),
        (["jean.dupont@chu.fr", "a@b.org", "x.y@z.co.uk"], "an e-mail address"),
        (["J.D.", "A.B.", "M.-C."], "initials"),
        (["12 rue de la Paix", "3 bis, avenue Foch", "221 Baker Street x"], "an address"),
    ],
)
def test_identifier_columns_by_values_national_and_international(values, kind):
    """It flags a column whose sampled values mostly look like an identifier, by position."""
    frame = pl.DataFrame({"id": ["P1", "P2", "P3"], "x": values, "nprs": ["1", "2", "-3"]})
    assert find_identifier_columns(frame) == [IdentifierColumn(2, "x", kind, "its values")]


@pytest.mark.parametrize(
    "values",
    [
        ["1", "2", "3"],
        ["IV", "IM", "SC"],  # route codes, not initials
        ["2016-08-14", "2016-09-16", "2016-10-01"],
        ["C01-0001", "C01-0002", "C01-0003"],
        ["+3", "-2", "+10"],  # change scores
        ["83.9", "82,9", "64.7"],
    ],
)
def test_identifier_columns_by_values_leave_study_values_alone(values):
    assert find_identifier_columns(pl.DataFrame({"x": values})) == []


def test_a_header_cell_is_looked_at_as_a_value():
    """In a file without a header row, its first record's phone number is the header."""
    frame = pl.DataFrame(schema={"C01-0001": pl.String, "06 12 34 56 00": pl.String})
    assert find_identifier_columns(frame) == [
        IdentifierColumn(2, "06 12 34 56 00", "a phone number", "its values")
    ]


def test_identifier_columns_are_found_in_linear_time_of_the_columns():
    """It finds the one identifier among 20,000 columns (one query over a long sample)."""
    columns = {f"c{i}": ["x"] * 3 for i in range(20_000)} | {"contact": ["0612345678"] * 3}
    found = find_identifier_columns(pl.DataFrame(columns))
    assert [(c.position, c.kind) for c in found] == [(20_001, "a phone number")]

"""Direct identifiers are recognised by column name and by content."""

from __future__ import annotations

import polars as pl

from transforms.staging.identifiers import direct_identifier_columns


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

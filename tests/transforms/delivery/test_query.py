"""The query: columns and rows kept, checked before any data is read."""

from __future__ import annotations

import polars as pl
import pytest

from transforms.delivery.errors import PullError, UnknownColumn, UnknownTable
from transforms.delivery.query import make_query, select_rows

FRAME = pl.DataFrame(
    {
        "patient_key": ["a", "b", "c"],
        "centre_id": ["C01", "C02", "C01"],
        "month": [0, 3, 3],
        "_run_id": ["r", "r", "r"],
    }
)


def test_make_query_takes_a_single_value_as_one():
    """It reads a lone centre or month as one value, not as a sequence of characters."""
    query = make_query("follow_ups", centres="C01", months=3)
    assert (query.centres, query.months) == (("C01",), (3,))


@pytest.mark.parametrize(
    ("table", "options", "error"),
    [
        ("visits", {}, UnknownTable),
        ("follow_ups", {"columns": []}, PullError),
        ("follow_ups", {"columns": ["month", "month"]}, PullError),
        ("follow_ups", {"months": ["3"]}, PullError),
    ],
)
def test_make_query_rejects_what_cannot_be_pulled(table, options, error):
    """It fails on an unknown table, no or repeated columns, months that are not integers."""
    with pytest.raises(error):
        make_query(table, **options)


def test_select_rows_filters_and_drops_lineage():
    """It keeps the centres and months asked, all columns but lineage, and warns of gaps."""
    query = make_query("follow_ups", centres=["C01", "C09"], months=[3])
    rows, warnings = select_rows(FRAME, query)
    assert rows.to_dicts() == [{"patient_key": "c", "centre_id": "C01", "month": 3}]
    assert warnings == ["no rows in follow_ups for centre C09"]


def test_select_rows_rejects_an_unknown_column():
    """It names the valid columns."""
    with pytest.raises(UnknownColumn, match="valid columns are patient_key, centre_id"):
        select_rows(FRAME, make_query("follow_ups", columns=["nprs"]))

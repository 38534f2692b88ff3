"""Which state a pull reads: parsing an as_of time (the states themselves: test_pull.py)."""

from __future__ import annotations

import datetime as dt

import pytest

from transforms.delivery.errors import PullError
from transforms.delivery.state import parse_as_of


@pytest.mark.parametrize(
    ("value", "moment"),
    [
        ("2026-01-10", dt.datetime(2026, 1, 10, 23, 59, 59, 999999)),  # the end of that day
        (dt.date(2026, 1, 10), dt.datetime(2026, 1, 10, 23, 59, 59, 999999)),
        (" 2026-02-10T03:00+01:00 ", dt.datetime(2026, 2, 10, 2, 0)),  # to naive UTC
        ("2026-02-10T03:00Z", dt.datetime(2026, 2, 10, 3, 0)),
        (dt.datetime(2026, 2, 10, 1, 59), dt.datetime(2026, 2, 10, 1, 59)),  # naive: UTC
    ],
)
def test_parse_as_of_gives_a_naive_utc_moment(value, moment):
    """It reads ISO text, dates and date-times; a bare date means the end of that day."""
    assert parse_as_of(value) == moment


@pytest.mark.parametrize("value", ["last tuesday", "10/01/2026", 20260110])
def test_parse_as_of_rejects_what_is_not_a_date(value):
    """It raises a one-line PullError with an example of what is valid."""
    with pytest.raises(PullError, match="as_of"):
        parse_as_of(value)

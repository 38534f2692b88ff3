"""p-values and estimates read the same in the console, Prefect and the results report."""

from __future__ import annotations

import pytest

from models.formatting import estimate_ci, p_text, p_value


@pytest.mark.parametrize(
    ("p", "cell", "text"),
    [
        (5.96e-27, "< 0.001", "p < 0.001"),
        (0.0, "< 0.001", "p < 0.001"),
        (0.000999, "< 0.001", "p < 0.001"),
        (0.001, "0.001", "p = 0.001"),
        (0.0421, "0.042", "p = 0.042"),
        (0.1161, "0.116", "p = 0.116"),
        (1.0, "1.000", "p = 1.000"),
        (None, "n/a", "p n/a"),
        (float("nan"), "n/a", "p n/a"),
    ],
)
def test_p_value_reads_below_a_thousandth_as_less_than(p, cell, text):
    """It never prints 0.0e+00 or 0.000: below 0.001 reads < 0.001, else three decimals."""
    assert p_value(p) == cell
    assert p_text(p) == text


def test_estimate_ci_formats_the_estimate_and_its_interval():
    assert estimate_ci(-0.5008, -0.5921, -0.4095) == "-0.50 (95% CI -0.59 to -0.41)"
    assert estimate_ci(0.0243, -0.0061, 0.0547, digits=3, signed=True) == (
        "+0.024 (95% CI -0.006 to +0.055)"
    )
    assert estimate_ci(2.5, None, None, digits=1) == "2.5"
    assert estimate_ci(None, 0.1, 0.2) == "n/a"

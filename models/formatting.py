"""Numbers as the study's readers expect them: p-values and estimates with their CIs.

One place for the console summary, the Prefect markdown and the results report, so a
p-value reads the same everywhere: ``p < 0.001`` below a thousandth (a p-value of
``6.0e-27`` or ``0.000`` says nothing more and misleads), else three decimals.
"""

from __future__ import annotations

import math

SMALLEST_P = 0.001


def p_value(p: float | None) -> str:
    """A p-value for a table cell: ``< 0.001``, ``0.042``; ``n/a`` when there is none."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "n/a"
    return f"< {SMALLEST_P}" if p < SMALLEST_P else f"{p:.3f}"


def p_text(p: float | None, name: str = "p") -> str:
    """A p-value in a sentence: ``p < 0.001``, ``p = 0.042``, ``p n/a``."""
    cell = p_value(p)
    return f"{name} {cell}" if cell.startswith("<") or cell == "n/a" else f"{name} = {cell}"


def estimate_ci(
    estimate: float | None,
    low: float | None,
    high: float | None,
    *,
    digits: int = 2,
    signed: bool = False,
) -> str:
    """``-0.50 (95% CI -0.59 to -0.41)``; ``n/a`` when the estimate is missing."""
    if estimate is None or (isinstance(estimate, float) and math.isnan(estimate)):
        return "n/a"
    form = f"{{:{'+' if signed else ''}.{digits}f}}"
    if low is None or high is None:
        return form.format(estimate)
    return f"{form.format(estimate)} (95% CI {form.format(low)} to {form.format(high)})"

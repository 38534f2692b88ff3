"""The report's own descriptive tables, computed from the views and the published tables.

Pure polars: the mean NPRS by month with its 95% CI and the number answering (and the
share of included patients that is), the forest plot's rows gathered from the model
tables, and adverse effects as a type x severity grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
from scipy import stats

from models.report import paper
from models.report.sources import Results
from schemas.forms import SEVERITIES

MEDIATION_EFFECTS = {"indirect_acme": "indirect (ACME)", "direct_ade": "direct (ADE)"}
MEDIATION_EFFECTS |= {"total": "total"}


def nprs_by_month(months: pl.DataFrame, n_included: int) -> pl.DataFrame:
    """Per month: patients answering (and % of included), mean NPRS, SD, t-based 95% CI."""
    summary = (
        months.group_by("month")
        .agg(
            n=pl.col("nprs").count(),
            mean=pl.col("nprs").mean(),
            sd=pl.col("nprs").std(),
        )
        .sort("month")
    )
    half = [
        float(stats.t.ppf(0.975, n - 1)) * sd / n**0.5 if n > 1 and sd is not None else None
        for n, sd in summary.select("n", "sd").iter_rows()
    ]
    return summary.with_columns(
        percent_included=100 * pl.col("n") / max(n_included, 1),
        ci_low=pl.col("mean") - pl.Series(half, dtype=pl.Float64),
        ci_high=pl.col("mean") + pl.Series(half, dtype=pl.Float64),
    )


@dataclass(frozen=True)
class Effect:
    """One row of the forest plot: a panel (its scale), a label, the estimate and CI,
    and the paper's figure when it has one."""

    panel: str
    label: str
    estimate: float | None
    ci_low: float | None
    ci_high: float | None
    published: paper.Published | None = None


def forest_rows(results: Results) -> list[Effect]:
    """The effects worth comparing, from whichever tables this run published."""
    rows = _effect_size(results) + _slopes(results) + _mediation(results) + _sf12(results)
    return [r for r in rows if r.estimate is not None]


def _row(frame: pl.DataFrame | None, column: str, value: str) -> dict | None:
    if frame is None or column not in frame.columns:
        return None
    found = frame.filter(pl.col(column) == value)
    return found.row(0, named=True) if found.height else None


def _effect(
    panel: str, label: str, row: dict | None, published: paper.Published | None = None
) -> list[Effect]:
    """The row's estimate and CI as a forest plot's effect (none when the row is absent)."""
    if row is None:
        return []
    low, high = row.get("ci_low"), row.get("ci_high")
    return [Effect(panel, label, row.get("estimate"), low, high, published)]


def _effect_size(results: Results) -> list[Effect]:
    table = results.table("lmm_primary_effect_size")
    row = table.row(0, named=True) if table is not None and table.height else None
    panel = "standardised one-year change in NPRS (SD)"
    return _effect(panel, "primary model", row, paper.EFFECT_SIZE)


def _slopes(results: Results) -> list[Effect]:
    panel = "change in NPRS per month (points)"
    primary = _row(results.table("lmm_primary_fixed_effects"), "term", "month")
    centre = _row(results.table("lmm_centre_fixed_effects"), "term", "month")
    paper_sign = _row(results.table("lmm_interaction_test"), "term", "month:not_depressed")
    return (
        _effect(panel, "primary model: month", primary)
        + _effect(panel, "centre model: month", centre)
        + _effect(panel, "month x not depressed (paper's sign)", paper_sign, paper.INTERACTION)
    )


def _mediation(results: Results) -> list[Effect]:
    panel = "mediation: NPRS change per +100 mg (points)"
    table = results.table("mediation_effects")
    return [
        e
        for key, label in MEDIATION_EFFECTS.items()
        for e in _effect(panel, label, _row(table, "effect", key))
    ]


def _sf12(results: Results) -> list[Effect]:
    panel = "SF-12 change at one year (points)"
    table = results.table("sf12_change")
    return [
        e
        for score, published in paper.SF12.items()
        for e in _effect(panel, score.upper(), _row(table, "score", score), published)
    ]


def adverse_grid(table: pl.DataFrame) -> pl.DataFrame:
    """Whole cohort: one row per type, a column per severity: ``events; patients (%)``."""
    overall = table.filter(pl.col("centre_id") == "all").with_columns(
        text=pl.format(
            "{}; {} ({}%)",
            "n_events",
            "patients_affected",
            pl.col("percent_patients").round(1),
        )
    )
    grid = overall.pivot(on="severity", index="ae_type", values="text")
    severities = [s for s in [*SEVERITIES, "all"] if s in grid.columns]
    order = pl.when(pl.col("ae_type") == "all").then(1).otherwise(0)
    rest = [c for c in grid.columns if c not in ("ae_type", *severities)]  # e.g. unknown
    return grid.sort(order, "ae_type").select("ae_type", *severities, *rest)

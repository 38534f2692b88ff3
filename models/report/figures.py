"""The report's figures: matplotlib PNGs embedded as base64, so the page stands alone.

Drawn on ``matplotlib.figure.Figure`` objects (no pyplot: no global state, safe in a
worker thread, nothing shown on a screen). Each function takes plain tables and returns
an ``<img>`` tag with its alternative text.
"""

from __future__ import annotations

import base64
import html
import io
from itertools import groupby

import polars as pl

from models.report.summaries import Effect

PAPER_COLOUR, OURS_COLOUR = "#c62828", "#1f4e79"


def _figure(width: float, height: float):
    from matplotlib.figure import Figure  # deferred: matplotlib only when a report is drawn

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _img(figure, alt: str) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def nprs_curve(by_month: pl.DataFrame, published: dict[int, float]) -> str:
    """Mean NPRS by month with its 95% CI, the number answering below, published points."""
    figure = _figure(8, 4.6)
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    months = by_month["month"].to_list()
    top.fill_between(months, by_month["ci_low"], by_month["ci_high"], alpha=0.25)
    top.plot(months, by_month["mean"], marker="o", color=OURS_COLOUR, label="this snapshot")
    if published:
        top.plot(*zip(*published.items(), strict=True), "D", color=PAPER_COLOUR, label="published")
    top.set_ylabel("mean NPRS (0-10), 95% CI")
    top.legend(loc="upper right")
    bottom.bar(months, by_month["n"], color="#90a4ae")
    bottom.set_ylabel("answering")
    bottom.set_xlabel("month since inclusion")
    bottom.set_xticks(range(0, 13))
    return _img(figure, "mean NPRS by month with 95% CI and the number of patients answering")


def trajectories(curves: pl.DataFrame, shares: dict[int, float]) -> str:
    """Each selected group's fitted curve with its CI, and the observed group means."""
    figure = _figure(8, 4.2)
    axes = figure.subplots()
    for (group,), part in curves.sort("group", "month").group_by("group", maintain_order=True):
        label = f"group {group} ({shares.get(group, float('nan')):.1%})"
        line = axes.plot(part["month"], part["estimate"], label=label)[0]
        if {"ci_low", "ci_high"} <= set(part.columns):
            axes.fill_between(part["month"], part["ci_low"], part["ci_high"], alpha=0.2)
        if "observed_mean" in part.columns:
            axes.plot(part["month"], part["observed_mean"], "o", color=line.get_color(), ms=3)
    axes.set_xlabel("month since inclusion")
    axes.set_ylabel("NPRS (0-10)")
    axes.set_ylim(0, 10)
    axes.legend(title="group (share)", fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    return _img(figure, "pain trajectory groups: fitted curves with 95% CI and observed means")


def forest(effects: list[Effect]) -> str:
    """One panel per scale; each effect with its CI, the paper's figure beside it."""
    panels = [(p, list(rows)) for p, rows in groupby(effects, key=lambda e: e.panel)]
    heights = [len(rows) + 1 for _, rows in panels]
    figure = _figure(8, 0.45 * sum(heights) + 0.8)
    axes = figure.subplots(len(panels), 1, height_ratios=heights, squeeze=False)[:, 0]
    for axis, (panel, rows) in zip(axes, panels, strict=True):
        _forest_panel(axis, panel, rows)
    return _img(figure, "forest plot of the models' effects with the published figures")


def _forest_panel(axis, panel: str, rows: list[Effect]) -> None:
    for y, effect in enumerate(reversed(rows)):
        low, high = effect.ci_low, effect.ci_high
        if low is not None and high is not None:
            axis.plot([low, high], [y, y], color=OURS_COLOUR)
        axis.plot([effect.estimate], [y], "s", color=OURS_COLOUR)
        paper = effect.published
        if paper is not None and paper.estimate is not None:
            if paper.ci_low is not None and paper.ci_high is not None:
                axis.plot([paper.ci_low, paper.ci_high], [y - 0.25] * 2, color=PAPER_COLOUR)
            axis.plot([paper.estimate], [y - 0.25], "D", color=PAPER_COLOUR, ms=5)
    axis.axvline(0, color="#888", lw=0.8, ls="--")
    axis.set_yticks(range(len(rows)), [e.label for e in reversed(rows)])
    axis.set_ylim(-0.8, len(rows) - 0.4)
    axis.set_title(panel, fontsize="medium", loc="left")


def adverse_bars(table: pl.DataFrame) -> str:
    """Patients affected (% of included) by type, stacked by severity, whole cohort."""
    overall = table.filter(
        (pl.col("centre_id") == "all")
        & (pl.col("ae_type") != "all")
        & (pl.col("severity") != "all")
    )
    grid = overall.pivot(on="severity", index="ae_type", values="percent_patients").fill_null(0)
    figure = _figure(8, 3.6)
    axes = figure.subplots()
    left = [0.0] * grid.height
    for severity in [c for c in grid.columns if c != "ae_type"]:
        axes.barh(grid["ae_type"], grid[severity], left=left, label=severity)
        left = [a + b for a, b in zip(left, grid[severity], strict=True)]
    axes.set_xlabel("% of included patients affected (a patient may count in several)")
    axes.legend(title="severity", fontsize="small")
    return _img(figure, "adverse effects: patients affected by type and severity")

"""The models' headline results, written once for people: the console and the Prefect UI.

``primary_block`` and ``secondary_block`` hold the figures a data manager looks at first,
each next to the paper's published figure; ``as_text`` lays a block out for the console
summary (``cohortflow demo``, ``run``), ``as_markdown`` for the Prefect artifact of the
model flow. Every full result is in the parquet files.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from models.formatting import p_text
from models.primary import PrimaryResult
from models.suite import StudyResults

# The paper's figures (the study the simulator imitates), shown beside ours.
PUBLISHED_EFFECT_SIZE = "-0.52 (95% CI -0.62 to -0.41)"
PUBLISHED_INTERACTION = "|0.04| (CI 0.01 to 0.06), p = .002"
PUBLISHED_PROPORTION_MEDIATED = "64.6%"
MEDIATION_LABELS = {"indirect_acme": "indirect", "direct_ade": "direct", "total": "total"}


@dataclass(frozen=True)
class Block:
    """A titled list of headline rows: (label, text), label empty for a row of text only."""

    title: str
    rows: list[tuple[str, str]]
    label_width: int  # the console's label column


def primary_block(primary: PrimaryResult, snapshot_id: str) -> Block:
    """The primary model: its data, the monthly change in pain, the one-year effect size."""
    fe = primary.fit.fixed_effects.filter(pl.col("term") == "month").row(0, named=True)
    es = primary.effect_size.row(0, named=True)
    slope = (
        f"{fe['estimate']:+.3f} (95% CI {fe['ci_low']:+.3f} to {fe['ci_high']:+.3f}), "
        f"{p_text(fe['p_value'])}"
    )
    effect = (
        f"{es['estimate']:+.2f} (95% CI {es['ci_low']:+.2f} to {es['ci_high']:+.2f})"
        f"   published: {PUBLISHED_EFFECT_SIZE}"
    )
    rows = [
        ("", f"{es['n_patients']} patients, {es['n_observations']} patient-months"),
        ("change in pain per month", slope),
        ("one-year effect size", effect),
    ]
    title = (
        f"Primary model (snapshot {snapshot_id}): NPRS ~ month, random intercept and slope "
        "per patient, REML"
    )
    return Block(title, rows, label_width=25)


def secondary_block(study: StudyResults) -> Block:
    """The secondary analyses in one row each, and those that could not run."""
    rows = []
    inter = study.interaction
    if inter:
        text = (
            f"{inter['estimate']:+.3f}/month (95% CI {inter['ci_low']:+.3f} to "
            f"{inter['ci_high']:+.3f}), LRT {p_text(inter['lrt_p_value'])}"
        )
        rows.append(
            ("time x depression (HADS-D >= 8)", f"{text}   published: {PUBLISHED_INTERACTION}")
        )
    if study.trajectory_groups:
        shares = " / ".join(f"{s:.0%}" for s in study.trajectory_shares)
        rows.append(("pain trajectories (BIC)", f"{study.trajectory_groups} groups: {shares}"))
    elif study.trajectory_status:  # fitted, but the number of groups is not determined
        rows.append(("pain trajectories (BIC)", study.trajectory_status))
    if study.mediation:
        rows += mediation_rows(study.mediation)
    if study.centre:
        flag = ", singular fit (on its boundary)" if study.centre["singular"] else ""
        variance = f"centre variance {study.centre['centre_intercept_var']:.3f}{flag}"
        rows.append(("centre as a random level", variance))
    for score, (before, after, p) in study.sf12.items():
        rows.append((score, f"{before:.1f} -> {after:.1f}, paired {p_text(p)}"))
    rows += [("", f"not fitted: {step}: {error}") for step, error in study.failed.items()]
    return Block("Secondary analyses (all results in the parquet files):", rows, label_width=32)


def mediation_rows(mediation: dict) -> list[tuple[str, str]]:
    """Indirect, direct and total effects with their bootstrap CIs; the proportion
    mediated, or why it is not estimable (the total effect's CI includes 0)."""
    effects = ", ".join(
        f"{label} {row['estimate']:+.3f} ({row['ci_low']:+.3f} to {row['ci_high']:+.3f})"
        for key, label in MEDIATION_LABELS.items()
        if (row := mediation.get(key))
    )
    proportion = mediation.get("proportion_mediated")
    if proportion is None:
        return [("mediation (per 100 mg, 95% CI)", effects)]
    share = (
        f"{proportion['estimate']:.1%}"
        if proportion["estimate"] is not None
        else proportion["status"]
    )
    text = f"{share}   published: {PUBLISHED_PROPORTION_MEDIATED}"
    return [("mediation (per 100 mg, 95% CI)", effects), ("proportion mediated", text)]


def fit_times_block(seconds: dict[str, float]) -> Block:
    """Each model's fit time, in the order fitted, and their total."""
    times = ", ".join(f"{name} {value:.2f} s" for name, value in seconds.items())
    return Block(f"Fit times (total {sum(seconds.values()):.1f} s):", [("", times)], 0)


def as_text(block: Block) -> list[str]:
    """The title, then each row indented, labels in a column."""
    return [block.title] + [
        f"  {label:<{block.label_width}} {text}" if label else f"  {text}"
        for label, text in block.rows
    ]


def as_markdown(block: Block) -> list[str]:
    """The title in bold, then a bullet per row."""
    return [f"**{block.title}**", ""] + [
        f"- {label}: {text}" if label else f"- {text}" for label, text in block.rows
    ]

"""The headline, written once: the console summary's lines and the Prefect markdown."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from models.headline import (
    as_markdown,
    as_text,
    fit_times_block,
    primary_block,
    secondary_block,
)
from models.mixed import GrowthModelFit
from models.primary import PrimaryResult
from models.suite import StudyResults


@pytest.fixture
def primary() -> PrimaryResult:
    fixed = pl.DataFrame(
        {"term": ["Intercept", "month"], "estimate": [6.7, -0.0805], "std_error": [0.1, 0.0075]}
    ).with_columns(ci_low=pl.Series([6.5, -0.0952]), ci_high=pl.Series([6.9, -0.0659]))
    fixed = fixed.with_columns(p_value=pl.Series([0.0, 5.96e-27]))
    variances = pl.DataFrame({"component": ["residual_var"], "estimate": [0.76]})
    fit = GrowthModelFit(fixed, variances, 2391, 316, -3639.05, True, "fast")
    effect = pl.DataFrame(
        {"estimate": [-0.501], "ci_low": [-0.592], "ci_high": [-0.409]}
    ).with_columns(n_patients=pl.lit(316), n_observations=pl.lit(2391))
    return PrimaryResult(fit, effect)


def _effect(estimate, low, high, status="estimated") -> dict:
    return {"estimate": estimate, "ci_low": low, "ci_high": high, "status": status}


NOT_ESTIMABLE = "not estimable: the total effect's 95% CI includes 0"
MEDIATION = {
    "indirect_acme": _effect(-0.005, -0.029, 0.010),
    "direct_ade": _effect(0.007, -0.05, 0.06),
    "total": _effect(0.002, -0.055, 0.135),
    "proportion_mediated": _effect(None, None, None, NOT_ESTIMABLE),
}


def _study(primary: PrimaryResult, **changes: Any) -> StudyResults:
    study = StudyResults(
        primary=primary,
        effect_size={},
        interaction={
            "estimate": 0.0243,
            "ci_low": -0.0062,
            "ci_high": 0.0548,
            "lrt_p_value": 0.1161,
        },
        trajectory_groups=2,
        trajectory_shares=[0.4, 0.6],
        mediation=MEDIATION,
        sf12={"pcs12": (28.51, 29.83, 0.0421)},
        fit_seconds={},
        failed={},
        manifest=Path("manifest.json"),
    )
    return replace(study, **changes)


def test_primary_block_as_text_is_the_console_summary(primary):
    assert as_text(primary_block(primary, "0f5b")) == [
        "Primary model (snapshot 0f5b): NPRS ~ month, random intercept and slope per patient, REML",
        "  316 patients, 2391 patient-months",
        "  change in pain per month  -0.081 (95% CI -0.095 to -0.066), p < 0.001",
        "  one-year effect size      -0.50 (95% CI -0.59 to -0.41)   published: -0.52 (95% CI "
        "-0.62 to -0.41)",
    ]


def test_secondary_block_as_text_lists_each_analysis_and_what_failed(primary):
    study = _study(
        primary,
        failed={"mediation": "ValueError: no one at month 12"},
        centre={"centre_intercept_var": 0.0, "singular": True},
    )
    assert as_text(secondary_block(study)) == [
        "Secondary analyses (all results in the parquet files):",
        "  time x depression (HADS-D >= 8)  +0.024/month (95% CI -0.006 to +0.055), LRT p = 0.116"
        "   published: |0.04| (CI 0.01 to 0.06), p = .002",
        "  pain trajectories (BIC)          2 groups: 40% / 60%",
        "  mediation (per 100 mg, 95% CI)   indirect -0.005 (-0.029 to +0.010), direct +0.007 "
        "(-0.050 to +0.060), total +0.002 (-0.055 to +0.135)",
        "  proportion mediated              not estimable: the total effect's 95% CI includes 0"
        "   published: 64.6%",
        "  centre as a random level         centre variance 0.000, singular fit (on its boundary)",
        "  pcs12                            28.5 -> 29.8, paired p = 0.042",
        "  not fitted: mediation: ValueError: no one at month 12",
    ]


def test_secondary_block_shows_an_estimable_proportion_mediated(primary):
    """A total effect whose CI excludes 0: the proportion is printed as a share."""
    mediation = MEDIATION | {"proportion_mediated": _effect(0.412, 0.1, 0.8)}
    rows = dict(secondary_block(_study(primary, mediation=mediation)).rows)
    assert rows["proportion mediated"] == "41.2%   published: 64.6%"
    assert "centre as a random level" not in rows


def test_secondary_block_leaves_out_analyses_that_did_not_run(primary):
    study = _study(primary, interaction={}, trajectory_groups=0, mediation={}, sf12={})
    assert secondary_block(study).rows == []


def test_as_markdown_bullets_the_same_rows(primary):
    lines = as_markdown(primary_block(primary, "0f5b"))
    assert lines[0].startswith("**Primary model (snapshot 0f5b)") and lines[1] == ""
    assert lines[2:] == [
        "- 316 patients, 2391 patient-months",
        "- change in pain per month: -0.081 (95% CI -0.095 to -0.066), p < 0.001",
        "- one-year effect size: -0.50 (95% CI -0.59 to -0.41)   published: -0.52 (95% CI "
        "-0.62 to -0.41)",
    ]


def test_fit_times_block_lists_each_model_in_order_and_the_total():
    block = fit_times_block({"primary": 0.19, "interaction": 0.24, "trajectory": 4.652})
    assert as_text(block) == [
        "Fit times (total 5.1 s):",
        "  primary 0.19 s, interaction 0.24 s, trajectory 4.65 s",
    ]

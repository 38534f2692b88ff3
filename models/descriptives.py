"""Descriptive results: SF-12 baseline vs one year, HADS by month, adverse effects.

* SF-12 PCS/MCS: patients with both scores, mean (SD) at each time, mean paired
  difference with its t-based 95% CI, paired t-test (two-sided).
* HADS-A/D: mean, SD and n of the scored questionnaires at each month.
* Adverse effects: events and patients affected by type and severity, overall and per
  centre; percentages of the included patients (of the centre's, per centre).
"""

from __future__ import annotations

import polars as pl
from scipy import stats

from models.analysis import Fitted, Options, Specification, Views

NAME = "descriptives"
SPECIFICATION = {
    "sf12_change": {"test": "paired t-test, one-year minus baseline, complete pairs"},
    "hads_by_month": {"summary": "mean, SD, n of scored questionnaires per month"},
    "adverse_effects": {"summary": "events and patients affected; % of included patients"},
}
SF12_SCORES = ("pcs12", "mcs12")
HADS_SCORES = ("hads_a", "hads_d")
ALL = "all"


def paired_comparison(patients: pl.DataFrame, score: str) -> pl.DataFrame:
    """One row: baseline vs one-year means (SD), mean difference, paired t-test."""
    pair = patients.select(f"{score}_baseline", f"{score}_one_year").drop_nulls()
    before, after = pair.to_series(0).to_numpy(), pair.to_series(1).to_numpy()
    test = stats.ttest_rel(after, before)
    ci = test.confidence_interval(0.95)
    return pl.DataFrame(
        {
            "score": [score],
            "n": [pair.height],
            "baseline_mean": [before.mean()],
            "baseline_sd": [before.std(ddof=1)],
            "one_year_mean": [after.mean()],
            "one_year_sd": [after.std(ddof=1)],
            "estimate": [(after - before).mean()],
            "std_error": [(after - before).std(ddof=1) / pair.height**0.5],
            "ci_low": [ci.low],
            "ci_high": [ci.high],
            "t_statistic": [float(test.statistic)],
            "p_value": [float(test.pvalue)],
        }
    )


def sf12_change(patients: pl.DataFrame) -> pl.DataFrame:
    """PCS-12 and MCS-12, baseline vs one year (one row per score)."""
    return pl.concat([paired_comparison(patients, s) for s in SF12_SCORES])


def hads_by_month(hads: pl.DataFrame) -> pl.DataFrame:
    """Mean, SD and n of HADS-A and HADS-D at each month (scored questionnaires only)."""
    long = hads.unpivot(on=list(HADS_SCORES), index="month", variable_name="score")
    return (
        long.drop_nulls("value")
        .group_by("score", "month")
        .agg(
            mean=pl.col("value").mean(),
            sd=pl.col("value").std(),
            n=pl.len().cast(pl.Int64),
        )
        .sort("score", "month")
    )


def adverse_effects(events: pl.DataFrame, patients: pl.DataFrame) -> pl.DataFrame:
    """Events and patients affected per type x severity, overall and per centre.

    Rows with ``ae_type`` / ``severity`` = ``all`` are margins; ``centre_id`` = ``all`` is
    the whole cohort. A patient with several events of one kind counts once.
    """
    included = patients.group_by("centre_id").agg(n_patients=pl.len().cast(pl.Int64))
    included = included.vstack(pl.DataFrame({"centre_id": [ALL], "n_patients": [patients.height]}))
    frame = events.join(patients.select("patient_key"), on="patient_key").with_columns(
        pl.col("severity").fill_null("unknown")
    )
    parts = [
        _count(frame, centre, ae_type, severity)
        for centre in (True, False)
        for ae_type in (True, False)
        for severity in (True, False)
    ]
    return (
        pl.concat(parts)
        .join(included, on="centre_id")
        .with_columns(percent_patients=100 * pl.col("patients_affected") / pl.col("n_patients"))
        .sort("centre_id", "ae_type", "severity")
    )


def _count(frame: pl.DataFrame, centre: bool, ae_type: bool, severity: bool) -> pl.DataFrame:
    """Counts for one combination of breakdowns; the others collapsed to ``all``."""
    keys = {"centre_id": centre, "ae_type": ae_type, "severity": severity}
    labelled = frame.with_columns(pl.lit(ALL).alias(k) for k, keep in keys.items() if not keep)
    return labelled.group_by(list(keys)).agg(
        n_events=pl.len().cast(pl.Int64),
        patients_affected=pl.col("patient_key").n_unique().cast(pl.Int64),
    )


def specification(options: Options) -> Specification:
    return {name: dict(entry) for name, entry in SPECIFICATION.items()}


def fit(views: Views, options: Options) -> Fitted:
    """SF-12 change, HADS by month, adverse effects (the result: the SF-12 table)."""
    patients = views["analysis_patients"]
    tables = {
        "sf12_change": sf12_change(patients),
        "hads_by_month": hads_by_month(views["hads_scored"]),
        "adverse_effects": adverse_effects(views["adverse_events"], patients),
    }
    return Fitted(tables["sf12_change"], tables)

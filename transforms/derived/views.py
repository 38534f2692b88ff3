"""Analysis-ready views, derived from the harmonised tables (never typed by centres).

Pure functions of the tables (current, or as of any snapshot): the same tables give the
same views. Materialised in the warehouse as ``analysis_*`` tables after every run that
changed data, so that analysts and models read one consistent version.

* ``hads_scored``, ``sf12_scored``: the questionnaires with their scores (HADS-A/D with
  the half rule; SF-12 v1 PCS/MCS norm-based);
* ``ketamine_doses``: each administration in mg (mg/kg x the patient's inclusion weight
  when the centre records mg/kg) and its month since inclusion;
* ``analysis_patient_months``: one row per observed patient-month;
* ``analysis_patients``: one row per patient.
"""

from __future__ import annotations

import polars as pl

from schemas.forms import DAYS_PER_MONTH, ONE_YEAR
from transforms.derived.scores import hads_scores, sf12_scores

VIEW_NAMES = (
    "hads_scored",
    "sf12_scored",
    "ketamine_doses",
    "analysis_patient_months",
    "analysis_patients",
)

# What the derived columns mean (the data dictionary shows these with the types).
VIEW_ABOUT = {
    "hads_scored": "HADS questionnaires with their scores (one row per patient and month)",
    "sf12_scored": "SF-12 questionnaires with PCS-12 and MCS-12 (baseline and month 12)",
    "ketamine_doses": "one row per administration, the dose in mg",
    "analysis_patient_months": "one row per observed patient-month: the models' input",
    "analysis_patients": "one row per included patient: baseline, one year, changes, totals",
}
DERIVED_COLUMNS = {
    "hads_a": "HADS anxiety 0-21; half rule: mean of answered items x 7 when >= 4 of 7 answered",
    "hads_d": "HADS depression 0-21; half rule as hads_a",
    "depressed": "baseline depressive symptoms: HADS-D >= 8 (the paper's > 7); null if unscored",
    "pcs12": "SF-12 v1 physical component score, norm-based (mean 50, SD 10); null if any "
    "item is missing",
    "mcs12": "SF-12 v1 mental component score, norm-based; null if any item is missing",
    "month": "months since inclusion (follow-up month; for doses floor(days / 30.4375))",
    "dose_mg": "dose in mg (mg/kg x inclusion weight where the centre records mg/kg)",
    "dose_source": "how dose_mg was obtained: mg, mg/kg x weight, or unknown",
    "cumulative_dose_mg": "mg given from inclusion to the end of this month (known doses)",
    "doses_unknown": "administrations whose dose could not be computed (left out of sums)",
    "hads_a_baseline": "HADS-A at month 0",
    "hads_d_baseline": "HADS-D at month 0",
    "hads_a_one_year": "HADS-A at month 12",
    "hads_d_one_year": "HADS-D at month 12",
    "nprs_baseline": "NPRS at month 0",
    "nprs_one_year": "NPRS at month 12 (null if the month-12 call is missing)",
    "last_month": "last month with an NPRS",
    "nprs_last": "NPRS at last_month",
    "pcs12_baseline": "PCS-12 at month 0",
    "mcs12_baseline": "MCS-12 at month 0",
    "pcs12_one_year": "PCS-12 at month 12",
    "mcs12_one_year": "MCS-12 at month 12",
    "total_dose_mg": "mg given in months 0-11 (the first year)",
    "n_administrations": "administrations in the first year",
    "n_adverse_events": "adverse effects reported",
    "n_severe_adverse_events": "adverse effects of severity 'severe'",
    "nprs_change": "nprs_one_year - nprs_baseline",
    "hads_a_change": "hads_a_one_year - hads_a_baseline",
    "hads_d_change": "hads_d_one_year - hads_d_baseline",
    "pcs12_change": "pcs12_one_year - pcs12_baseline",
    "mcs12_change": "mcs12_one_year - mcs12_baseline",
}
# Label and unit of each derived column (data dictionary, data cards, Stata/SPSS/SAS labels).
SCORE_21, SF12_UNIT = "points, 0-21", "points, norm-based (mean 50, SD 10)"
DERIVED_LABELS: dict[str, tuple[str, str]] = {
    "hads_a": ("HADS anxiety score (HADS-A)", SCORE_21),
    "hads_d": ("HADS depression score (HADS-D)", SCORE_21),
    "depressed": ("Depressive symptoms at baseline (HADS-D >= 8)", ""),
    "pcs12": ("SF-12 physical component score (PCS-12)", SF12_UNIT),
    "mcs12": ("SF-12 mental component score (MCS-12)", SF12_UNIT),
    "month": ("Month since inclusion", "months"),
    "dose_mg": ("Ketamine dose", "mg"),
    "dose_source": ("How the dose in mg was obtained", ""),
    "cumulative_dose_mg": ("Cumulative ketamine dose to the end of the month", "mg"),
    "doses_unknown": ("Administrations of unknown dose", "count"),
    "hads_a_baseline": ("HADS-A at baseline", SCORE_21),
    "hads_d_baseline": ("HADS-D at baseline", SCORE_21),
    "hads_a_one_year": ("HADS-A at one year", SCORE_21),
    "hads_d_one_year": ("HADS-D at one year", SCORE_21),
    "nprs_baseline": ("NPRS at baseline", "points, 0-10"),
    "nprs_one_year": ("NPRS at one year", "points, 0-10"),
    "last_month": ("Last month with an NPRS", "months"),
    "nprs_last": ("NPRS at the last month answered", "points, 0-10"),
    "pcs12_baseline": ("PCS-12 at baseline", SF12_UNIT),
    "mcs12_baseline": ("MCS-12 at baseline", SF12_UNIT),
    "pcs12_one_year": ("PCS-12 at one year", SF12_UNIT),
    "mcs12_one_year": ("MCS-12 at one year", SF12_UNIT),
    "total_dose_mg": ("Ketamine dose over the first year", "mg"),
    "n_administrations": ("Administrations in the first year", "count"),
    "n_adverse_events": ("Adverse effects reported", "count"),
    "n_severe_adverse_events": ("Severe adverse effects reported", "count"),
    "nprs_change": ("Change in NPRS over one year", "points"),
    "hads_a_change": ("Change in HADS-A over one year", "points"),
    "hads_d_change": ("Change in HADS-D over one year", "points"),
    "pcs12_change": ("Change in PCS-12 over one year", "points"),
    "mcs12_change": ("Change in MCS-12 over one year", "points"),
}


def build_views(tables: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """Every view from the harmonised tables (keyed by table name)."""
    patients = tables["patients"]
    hads = hads_scores(tables["hads"])
    sf12 = sf12_scores(tables["sf12"])
    doses = ketamine_doses(tables["ketamine_administrations"], patients)
    months = patient_months(tables["follow_ups"], patients, hads, doses)
    per_patient = patient_summary(patients, months, hads, sf12, doses, tables["adverse_events"])
    return {
        "hads_scored": hads,
        "sf12_scored": sf12,
        "ketamine_doses": doses,
        "analysis_patient_months": months,
        "analysis_patients": per_patient,
    }


def ketamine_doses(ketamine: pl.DataFrame, patients: pl.DataFrame) -> pl.DataFrame:
    """Administrations in mg, with the month since inclusion they fall in."""
    return (
        ketamine.join(
            patients.select("patient_key", "weight_kg", "inclusion_date"), on="patient_key"
        )
        .with_columns(
            dose_mg=pl.coalesce("dose_mg", pl.col("dose_mg_per_kg") * pl.col("weight_kg")),
            dose_source=pl.when(pl.col("dose_mg").is_not_null())
            .then(pl.lit("mg"))
            .when(pl.col("dose_mg_per_kg").is_not_null() & pl.col("weight_kg").is_not_null())
            .then(pl.lit("mg/kg x weight"))
            .otherwise(pl.lit("unknown: mg/kg without weight")),
            month=_months_since("administration_date"),
        )
        .select(
            "patient_key",
            "centre_id",
            "sequence",
            "administration_date",
            "month",
            "dose_mg",
            "dose_source",
            "route",
            "setting",
        )
        .sort("patient_key", "sequence")
    )


def _months_since(date_column: str) -> pl.Expr:
    days = (pl.col(date_column) - pl.col("inclusion_date")).dt.total_days()
    return (days / DAYS_PER_MONTH).floor().cast(pl.Int64)


def _baseline(frame: pl.DataFrame, columns: list[str], suffix: str, month: int) -> pl.DataFrame:
    return frame.filter(pl.col("month") == month).select(
        "patient_key", *[pl.col(c).alias(f"{c}_{suffix}") for c in columns]
    )


def patient_months(
    follow_ups: pl.DataFrame,
    patients: pl.DataFrame,
    hads: pl.DataFrame,
    doses: pl.DataFrame,
) -> pl.DataFrame:
    """One row per observed patient-month, with the covariates the models need.

    ``cumulative_dose_mg``: mg given from inclusion to the end of that month (doses of
    unknown amount are left out; ``doses_unknown`` counts them).
    """
    baseline = _baseline(hads, ["hads_a", "hads_d", "depressed"], "baseline", 0).rename(
        {"depressed_baseline": "depressed"}
    )
    grid = follow_ups.select("patient_key", "month")
    given = grid.join(
        doses.select("patient_key", "month", "dose_mg"), on="patient_key", suffix="_given"
    )
    cumulative = (
        given.filter(pl.col("month_given") <= pl.col("month"))
        .group_by("patient_key", "month")
        .agg(
            cumulative_dose_mg=pl.col("dose_mg").sum(),
            doses_unknown=pl.col("dose_mg").is_null().sum().cast(pl.Int64),
        )
    )
    return (
        follow_ups.select("patient_key", "centre_id", "month", "call_date", "nprs")
        .join(patients.select("patient_key", "sex", "age", "pain_diagnosis"), on="patient_key")
        .join(baseline, on="patient_key", how="left")
        .join(cumulative, on=["patient_key", "month"], how="left")
        .with_columns(
            pl.col("cumulative_dose_mg").fill_null(0.0),
            pl.col("doses_unknown").fill_null(0),
        )
        .sort("patient_key", "month")
    )


def patient_summary(
    patients: pl.DataFrame,
    months: pl.DataFrame,
    hads: pl.DataFrame,
    sf12: pl.DataFrame,
    doses: pl.DataFrame,
    adverse_events: pl.DataFrame,
) -> pl.DataFrame:
    """One row per patient: baseline and one-year values, changes, dose, adverse events."""
    nprs = months.select("patient_key", "month", "nprs")
    last = (
        nprs.sort("month")
        .group_by("patient_key")
        .agg(last_month=pl.col("month").last(), nprs_last=pl.col("nprs").last())
    )
    year_doses = (
        doses.filter(pl.col("month") < ONE_YEAR)
        .group_by("patient_key")
        .agg(
            total_dose_mg=pl.col("dose_mg").sum(),
            n_administrations=pl.len().cast(pl.Int64),
            doses_unknown=pl.col("dose_mg").is_null().sum().cast(pl.Int64),
        )
    )
    events = adverse_events.group_by("patient_key").agg(
        n_adverse_events=pl.len().cast(pl.Int64),
        n_severe_adverse_events=(pl.col("severity") == "severe").sum().cast(pl.Int64),
    )
    frame = patients.select(
        "patient_key", "centre_id", "sex", "age", "pain_diagnosis", "weight_kg", "inclusion_date"
    )
    for part in (
        _baseline(nprs, ["nprs"], "baseline", 0),
        _baseline(nprs, ["nprs"], "one_year", ONE_YEAR),
        last,
        _baseline(hads, ["hads_a", "hads_d", "depressed"], "baseline", 0),
        _baseline(hads, ["hads_a", "hads_d"], "one_year", ONE_YEAR),
        _baseline(sf12, ["pcs12", "mcs12"], "baseline", 0),
        _baseline(sf12, ["pcs12", "mcs12"], "one_year", ONE_YEAR),
        year_doses,
        events,
    ):
        frame = frame.join(part, on="patient_key", how="left")
    return (
        frame.rename({"depressed_baseline": "depressed"})
        .with_columns(
            nprs_change=pl.col("nprs_one_year") - pl.col("nprs_baseline"),
            hads_a_change=pl.col("hads_a_one_year") - pl.col("hads_a_baseline"),
            hads_d_change=pl.col("hads_d_one_year") - pl.col("hads_d_baseline"),
            pcs12_change=pl.col("pcs12_one_year") - pl.col("pcs12_baseline"),
            mcs12_change=pl.col("mcs12_one_year") - pl.col("mcs12_baseline"),
            total_dose_mg=pl.col("total_dose_mg").fill_null(0.0),
            n_administrations=pl.col("n_administrations").fill_null(0),
            doses_unknown=pl.col("doses_unknown").fill_null(0),
            n_adverse_events=pl.col("n_adverse_events").fill_null(0),
            n_severe_adverse_events=pl.col("n_severe_adverse_events").fill_null(0),
        )
        .sort("patient_key")
    )

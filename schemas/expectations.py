"""The data-quality check catalogue, and the Great Expectations suites built from it.

Every check is declared once here: its id, its Kahn category (conformance, completeness,
plausibility; Kahn et al., eGEMs 2016) and subcategory, the table and column it looks at,
what it counts and its default thresholds. ``transforms/quality*.py`` compute the checks;
this module only declares them.

Timeliness is a category of its own (Kahn's framework has none; it is Weiskopf's
"currency"): it is about when a centre last sent data, not about values, and a data
manager acts on it differently (a reminder, not a query).

Thresholds: a check *fails* in a centre when the share of violating units exceeds
``pct`` **or** their number exceeds ``count`` (``None``: no limit on that axis). A check
with nothing to check (``n_checked == 0``) is ``not_applicable``, never passed.

Checks with ``expectations`` run in Great Expectations (GX 1.x, on pandas frames: GX
takes neither polars nor DuckDB); the others are computed in DuckDB/polars. GX is
imported only inside :func:`build_suites` (importing it costs about 1.5 s).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from schemas.forms import (
    AE_TYPES,
    DRUG_CLASSES,
    FORMS,
    HADS_ITEMS,
    PAIN_DIAGNOSES,
    ROUTES,
    SETTINGS,
    SEVERITIES,
    SEXES,
    SF12_RANGES,
    VIEW_KEYS,
)

CONFORMANCE = "conformance"
COMPLETENESS = "completeness"
PLAUSIBILITY = "plausibility"
TIMELINESS = "timeliness"
CATEGORIES = (CONFORMANCE, COMPLETENESS, PLAUSIBILITY, TIMELINESS)

PLAUSIBLE_MAX_DOSE_MG = 1000  # one administration; Pandera lets up to 2000 mg through
NPRS_JUMP = 6  # |change| between consecutive observed months that is implausible
CALL_TOLERANCE_DAYS = 31  # call date vs inclusion + month x 30.4375 days
DISTRIBUTION_SMD = 1.0  # |centre mean - other centres' mean| / their SD
DISTRIBUTION_MIN_N = 5  # fewer scored patients in a centre: not applicable
RETENTION_LOST_PCT = 80.0  # patients due at month 12 without its pain score; paper: ~67 %
EXPORT_CADENCE_DAYS = 35  # a centre is late when it sent nothing for longer

# One GX expectation: the class name in great_expectations.expectations and its arguments.
Expectation = tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class Threshold:
    """Largest acceptable violation: percent of units and/or count (None: no limit)."""

    pct: float | None = None
    count: int | None = None


ZERO = Threshold(pct=0.0, count=0)


@dataclass(frozen=True)
class Check:
    """One data-quality check, computed per centre and run."""

    check_id: str
    category: str
    subcategory: str
    table: str
    column: str
    description: str
    threshold: Threshold
    unit: str = "rows"  # what n_checked counts
    expectations: tuple[Expectation, ...] = field(default=())

    @property
    def engine(self) -> str:
        return "great_expectations" if self.expectations else "duckdb"


def _in_set(column: str, values) -> Expectation:
    return ("ExpectColumnValuesToBeInSet", {"column": column, "value_set": list(values)})


def _between(column: str, low, high) -> Expectation:
    return (
        "ExpectColumnValuesToBeBetween",
        {"column": column, "min_value": low, "max_value": high},
    )


def _not_null(column: str) -> Expectation:
    return ("ExpectColumnValuesToNotBeNull", {"column": column})


def _unique(columns: tuple[str, ...]) -> Expectation:
    if len(columns) == 1:
        return ("ExpectColumnValuesToBeUnique", {"column": columns[0]})
    return ("ExpectCompoundColumnsToBeUnique", {"column_list": list(columns)})


def _gx(
    check_id, category, subcategory, table, column, description, threshold, *expect, unit="rows"
):
    return Check(
        check_id, category, subcategory, table, column, description, threshold, unit, expect
    )


def _codes(check_id: str, table: str, column: str, values, what: str) -> Check:
    text = f"{what}: one of {', '.join(map(str, values))}"
    return _gx(check_id, CONFORMANCE, "value", table, column, text, ZERO, _in_set(column, values))


def _range(check_id: str, table: str, column: str, low, high, what: str) -> Check:
    text = f"{what} within {low}-{high}"
    return _gx(
        check_id, CONFORMANCE, "value", table, column, text, ZERO, _between(column, low, high)
    )


def _sql(check_id, category, subcategory, table, column, description, threshold, unit) -> Check:
    return Check(check_id, category, subcategory, table, column, description, threshold, unit)


KEYS: dict[str, tuple[str, ...]] = {**{f.table: f.key for f in FORMS.values()}, **VIEW_KEYS}
TABLES = tuple(KEYS)

# The catalogue reads as a table, one check per entry: kept out of the formatter's reach.
# fmt: off
CONFORMANCE_CHECKS = (
    _codes("conf_patients_sex", "patients", "sex", SEXES, "sex"),
    _range("conf_patients_age", "patients", "age", 18, 100, "age at inclusion (years)"),
    _codes("conf_patients_diagnosis", "patients", "pain_diagnosis", PAIN_DIAGNOSES, "diagnosis"),
    _range("conf_patients_weight", "patients", "weight_kg", 30, 250, "weight (kg)"),
    _range("conf_follow_ups_month", "follow_ups", "month", 0, 12, "follow-up month"),
    _codes("conf_follow_ups_nprs", "follow_ups", "nprs", range(11), "NPRS (integer)"),
    _codes("conf_ketamine_route", "ketamine_administrations", "route", ROUTES, "route"),
    _codes("conf_ketamine_setting", "ketamine_administrations", "setting", SETTINGS, "setting"),
    _gx("conf_hads_items", CONFORMANCE, "value", "hads", "hads_a1..hads_d7",
        "each of the 14 HADS items within 0-3", ZERO,
        *(_between(item, 0, 3) for item in HADS_ITEMS), unit="item values"),
    _gx("conf_sf12_items", CONFORMANCE, "value", "sf12", "gh1..sf2",
        "each SF-12 v1 item within its answer range (1 to 2..6)", ZERO,
        *(_between(item, 1, top) for item, top in SF12_RANGES.items()), unit="item values"),
    _codes("conf_sf12_month", "sf12", "month", (0, 12), "SF-12 timepoint (month)"),
    _codes("conf_adverse_events_type", "adverse_events", "ae_type", AE_TYPES, "type"),
    _codes("conf_adverse_events_severity", "adverse_events", "severity", SEVERITIES, "severity"),
    _codes("conf_treatments_class", "concomitant_treatments", "drug_class", DRUG_CLASSES, "class"),
    _range("conf_treatments_month", "concomitant_treatments", "month", 0, 12, "month"),
    _gx("conf_hads_scores", CONFORMANCE, "computational", "hads_scored", "hads_a, hads_d",
        "HADS-A and HADS-D scores within 0-21", ZERO,
        _between("hads_a", 0, 21), _between("hads_d", 0, 21), unit="scores"),
    _gx("conf_sf12_scores", CONFORMANCE, "computational", "sf12_scored", "pcs12, mcs12",
        "PCS-12 and MCS-12 within 0-100", ZERO,
        _between("pcs12", 0, 100), _between("mcs12", 0, 100), unit="scores"),
    _sql("conf_hads_sum", CONFORMANCE, "computational", "hads_scored", "hads_a, hads_d",
         "a fully answered HADS subscale scores the sum of its 7 items", ZERO, "scores"),
    _sql("conf_known_patient", CONFORMANCE, "relational", "all forms", "patient_key",
         "every row of every form belongs to an included patient", ZERO, "rows"),
    _sql("conf_same_centre", CONFORMANCE, "relational", "all forms", "centre_id",
         "every row comes from its patient's centre", ZERO, "rows"),
    _sql("conf_quarantine_rate", CONFORMANCE, "value", "ingested_files", "rows_quarantined",
         "rows quarantined at ingestion (Pandera) among rows read", Threshold(pct=5.0),
         "rows read"),
    _sql("conf_files_rejected", CONFORMANCE, "value", "ingested_files", "status",
         "files received that could not be read at all (still rejected)", ZERO, "files"),
)

COMPLETENESS_CHECKS = (
    _sql("comp_monthly_calls", COMPLETENESS, "temporal", "follow_ups", "nprs",
         "monthly calls received among those expected (month <= months since inclusion, "
         "patient not dropped out: a later call exists)", Threshold(pct=15.0), "patient-months"),
    _sql("comp_hads_baseline", COMPLETENESS, "atemporal", "hads_scored", "hads_d",
         "patients with a scorable baseline HADS-D (needed for the depression group)",
         Threshold(pct=5.0), "patients"),
    _sql("comp_sf12_baseline", COMPLETENESS, "atemporal", "sf12_scored", "pcs12, mcs12",
         "patients with baseline PCS-12 and MCS-12", Threshold(pct=5.0), "patients"),
    _sql("comp_one_year_questionnaires", COMPLETENESS, "temporal", "hads_scored, sf12_scored",
         "hads_d, pcs12", "patients called at month 12 with HADS and SF-12 scored at month 12",
         Threshold(pct=10.0), "patients"),
    _sql("comp_retention_month12", COMPLETENESS, "temporal", "follow_ups", "nprs",
         "patients due at month 12 (a year since inclusion) with a month-12 pain score: the "
         "primary endpoint; the study kept about a third, so more than 80 % lost flags a "
         "centre", Threshold(pct=RETENTION_LOST_PCT), "patients"),
    _sql("comp_ketamine_given", COMPLETENESS, "atemporal", "ketamine_administrations",
         "patient_key", "patients with at least one ketamine administration",
         Threshold(pct=5.0), "patients"),
    _gx("comp_dose_known", COMPLETENESS, "atemporal", "ketamine_doses", "dose_mg",
        "administrations whose dose in mg is known (mg/kg needs the weight)",
        Threshold(pct=2.0), _not_null("dose_mg")),
    _gx("comp_patients_weight", COMPLETENESS, "atemporal", "patients", "weight_kg",
        "patients with a weight at inclusion", Threshold(pct=10.0), _not_null("weight_kg")),
    _gx("comp_call_date", COMPLETENESS, "atemporal", "follow_ups", "call_date",
        "follow-ups with a call date", Threshold(pct=5.0), _not_null("call_date")),
)

UNIQUENESS_CHECKS = tuple(
    _gx(f"plau_unique_{table}", PLAUSIBILITY, "uniqueness", table, ", ".join(key),
        f"natural key ({', '.join(key)}) unique", ZERO, _unique(key))
    for table, key in KEYS.items()
)

_DISTRIBUTION = (f"centre mean within {DISTRIBUTION_SMD} SD of the other centres' "
                 f"(centres with >= {DISTRIBUTION_MIN_N} patients)")
PLAUSIBILITY_CHECKS = (
    _sql("plau_nprs_jump", PLAUSIBILITY, "temporal", "follow_ups", "nprs",
         f"NPRS change of {NPRS_JUMP} points or more between consecutive observed months",
         Threshold(pct=2.0), "pairs of months"),
    _gx("plau_dose_max", PLAUSIBILITY, "atemporal", "ketamine_doses", "dose_mg",
        f"dose per administration at most {PLAUSIBLE_MAX_DOSE_MG} mg", ZERO,
        _between("dose_mg", 0, PLAUSIBLE_MAX_DOSE_MG)),
    _sql("plau_call_timing", PLAUSIBILITY, "temporal", "follow_ups", "call_date",
         f"call within {CALL_TOLERANCE_DAYS} days of inclusion + month x 30.4 days",
         Threshold(pct=5.0), "calls"),
    _sql("plau_hads_distribution", PLAUSIBILITY, "atemporal", "hads_scored", "hads_a, hads_d",
         f"baseline HADS-A and HADS-D: {_DISTRIBUTION}", ZERO, "scores"),
    _sql("plau_sf12_distribution", PLAUSIBILITY, "atemporal", "sf12_scored", "pcs12, mcs12",
         f"baseline PCS-12 and MCS-12: {_DISTRIBUTION}", ZERO, "scores"),
    _sql("plau_nprs_distribution", PLAUSIBILITY, "atemporal", "follow_ups", "nprs",
         f"baseline NPRS: {_DISTRIBUTION}", ZERO, "scores"),
)

TIMELINESS_CHECKS = (
    _sql("time_last_export", TIMELINESS, "currency", "ingested_files", "ingested_at",
         "days since the centre's last file within the export cadence "
         f"(default {EXPORT_CADENCE_DAYS} days)", ZERO, "centre"),
)
# fmt: on

CHECKS: tuple[Check, ...] = (
    CONFORMANCE_CHECKS
    + COMPLETENESS_CHECKS
    + UNIQUENESS_CHECKS
    + PLAUSIBILITY_CHECKS
    + TIMELINESS_CHECKS
)
CHECKS_BY_ID: dict[str, Check] = {c.check_id: c for c in CHECKS}


def gx_checks(table: str | None = None) -> list[Check]:
    """The checks that run in Great Expectations (of one table, or all)."""
    return [c for c in CHECKS if c.expectations and table in (None, c.table)]


def suite_name(table: str) -> str:
    return f"cohortflow_{table}"


def build_suites(context, tables: Iterable[str] | None = None) -> dict[str, Any]:
    """One GX ExpectationSuite per table (of ``tables``, or every one), added to
    ``context``; each expectation's ``meta`` names its check (and Kahn category), so
    results map back to the catalogue."""
    import great_expectations as gx  # ~1.5 s: only where GX is used
    import great_expectations.expectations as gxe

    suites = {}
    for table in tables if tables is not None else dict.fromkeys(c.table for c in gx_checks()):
        suite = context.suites.add(gx.ExpectationSuite(name=suite_name(table)))
        for check in gx_checks(table):
            meta = {"check_id": check.check_id, "category": check.category}
            for name, kwargs in check.expectations:
                suite.add_expectation(getattr(gxe, name)(**kwargs, meta=meta))
        suites[table] = suite
    return suites

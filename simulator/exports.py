"""Render a simulated cohort as each centre's own export files, with their mapping configs.

Export styles (each centre uses one):

* ``redcap``: REDCap-like long CSV, one file per instrument, event names
  (``baseline_arm_1``, ``month_3_arm_1``), raw codes (sex 1/2), ISO dates, UTF-8;
* ``fr_wide``: French-locale spreadsheet CSV, ``;`` separator, decimal comma,
  dd/mm/yyyy dates, latin-1, French headers, follow-up wide (``EN_M0..EN_M12``),
  ``ND`` for a missed call.

Faults are injected into the text at a known rate and recorded (file, source row,
column, kind) so that tests can check each one lands in quarantine.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from simulator.cohort import SimulatedCohort
from transforms.mapping import CentreMapping, CsvFormat, FormMapping, dump_centre_mapping

STYLES = ("redcap", "fr_wide")
FR_DIAGNOSES = {
    "neuropathic": "neuropathique",
    "fibromyalgia": "fibromyalgie",
    "crps": "SDRC",
    "other": "autre",
}
REDCAP_DIAGNOSES = {"neuropathic": "1", "fibromyalgia": "2", "crps": "3", "other": "4"}


@dataclass(frozen=True)
class Fault:
    """How to damage one cell: which columns it applies to and the text it writes."""

    kind: str
    columns: tuple[str, ...]  # source columns (regex for wide files)
    value: str


# Source-column names per style that each fault may hit.
FAULTS = {
    "redcap": (
        Fault("nprs_out_of_range", ("nprs",), "11"),
        Fault("nprs_not_integer", ("nprs",), "6.5"),
        Fault("unknown_sex_code", ("sex",), "9"),
        Fault("future_date", ("date_appel",), "2031-01-15"),
    ),
    "fr_wide": (
        Fault("nprs_out_of_range", ("EN_M3", "EN_M1"), "12"),
        Fault("nprs_not_integer", ("EN_M2",), "5,5"),
        Fault("unknown_sex_code", ("Sexe",), "X"),
        Fault("impossible_date", ("Date d'inclusion",), "31/02/2016"),
    ),
}


def centre_styles(cohort: SimulatedCohort) -> dict[str, str]:
    """Each centre's export style: alternating, so both styles cover many centres."""
    ids = cohort.centres["centre_id"].to_list()
    return {c: STYLES[i % len(STYLES)] for i, c in enumerate(ids)}


def write_centre_exports(
    cohort: SimulatedCohort,
    workspace: Path,
    *,
    fault_rate: float = 0.0,
    export_date: dt.date = dt.date(2017, 9, 22),
) -> pl.DataFrame:
    """Write every centre's export files into the inbox and its mapping config.

    Returns the injected faults (centre, file, source_row, source_column, kind).
    """
    rng = np.random.default_rng(cohort.parameters.seed + 1)
    faults = []
    for centre, style in centre_styles(cohort).items():
        inbox = workspace / "inbox" / centre
        inbox.mkdir(parents=True, exist_ok=True)
        (workspace / "centres").mkdir(parents=True, exist_ok=True)
        render = _RENDERERS[style]
        for form, (name, table, fmt) in render(cohort, centre, export_date).items():
            table, injected = _inject_faults(table, style, fault_rate, rng)
            _write_csv(table, inbox / name, fmt)
            faults += [(centre, name, form, *f) for f in injected]
        dump_centre_mapping(_MAPPINGS[style](centre), workspace / "centres" / f"{centre}.yaml")
    return pl.DataFrame(
        faults,
        schema=["centre_id", "file", "form", "source_row", "source_column", "kind"],
        orient="row",
    )


def _of(frame: pl.DataFrame, centre: str) -> pl.DataFrame:
    return frame.filter(pl.col("centre_id") == centre)


def _render_redcap(cohort: SimulatedCohort, centre: str, day: dt.date):
    stamp = day.strftime("%Y%m%d")
    inclusion = _of(cohort.patients, centre).select(
        pl.col("patient_id").alias("record_id"),
        pl.col("sex").replace_strict({"M": "1", "F": "2"}).alias("sex"),
        pl.col("age").cast(pl.String).alias("age"),
        pl.col("pain_diagnosis").replace_strict(REDCAP_DIAGNOSES).alias("diag"),
        pl.col("weight_kg").cast(pl.String).alias("weight"),
        pl.col("inclusion_date").dt.strftime("%Y-%m-%d").alias("incl_date"),
    )
    follow_up = _of(cohort.follow_ups, centre).select(
        pl.col("patient_id").alias("record_id"),
        pl.when(pl.col("month") == 0)
        .then(pl.lit("baseline_arm_1"))
        .otherwise(pl.format("month_{}_arm_1", pl.col("month")))
        .alias("redcap_event_name"),
        pl.col("call_date").dt.strftime("%Y-%m-%d").alias("date_appel"),
        pl.col("nprs").cast(pl.String).alias("nprs"),
    )
    fmt = CsvFormat()
    return {
        "inclusion": (f"{centre}_inclusion_{stamp}.csv", inclusion, fmt),
        "follow_up": (f"{centre}_followup_{stamp}.csv", follow_up, fmt),
    }


def _redcap_mapping(centre: str) -> CentreMapping:
    events = {"baseline_arm_1": "0"} | {f"month_{m}_arm_1": str(m) for m in range(1, 13)}
    return CentreMapping(
        centre_id=centre,
        description="REDCap-like long CSV exports, one file per instrument",
        forms={
            "inclusion": FormMapping(
                file_pattern=f"{centre}_inclusion_*.csv",
                columns={
                    "patient_id": "record_id",
                    "sex": "sex",
                    "age": "age",
                    "pain_diagnosis": "diag",
                    "weight_kg": "weight",
                    "inclusion_date": "incl_date",
                },
                codes={
                    "sex": {"1": "M", "2": "F"},
                    "pain_diagnosis": {v: k for k, v in REDCAP_DIAGNOSES.items()},
                },
            ),
            "follow_up": FormMapping(
                file_pattern=f"{centre}_followup_*.csv",
                columns={
                    "patient_id": "record_id",
                    "month": "redcap_event_name",
                    "call_date": "date_appel",
                    "nprs": "nprs",
                },
                codes={"month": events},
            ),
        },
    )


def _render_fr_wide(cohort: SimulatedCohort, centre: str, day: dt.date):
    stamp = day.strftime("%d%m%Y")
    inclusion = _of(cohort.patients, centre).select(
        pl.col("patient_id").alias("N° patient"),
        pl.col("sex").replace_strict({"M": "H", "F": "F"}).alias("Sexe"),
        pl.col("age").cast(pl.String).alias("Âge"),
        pl.col("pain_diagnosis").replace_strict(FR_DIAGNOSES).alias("Diagnostic"),
        pl.col("weight_kg").cast(pl.String).str.replace(".", ",", literal=True).alias("Poids (kg)"),
        pl.col("inclusion_date").dt.strftime("%d/%m/%Y").alias("Date d'inclusion"),
    )
    patients = _of(cohort.patients, centre).select("patient_id")
    latent = _of(cohort.latent, centre).select("patient_id", "last_month")
    long = _of(cohort.follow_ups, centre)
    wide = patients.join(latent, on="patient_id")
    for m in range(13):
        month = long.filter(pl.col("month") == m).select(
            "patient_id",
            pl.col("nprs").cast(pl.String).alias(f"EN_M{m}"),
            pl.col("call_date").dt.strftime("%d/%m/%Y").alias(f"Date_M{m}"),
        )
        wide = wide.join(month, on="patient_id", how="left").with_columns(
            # A missed call while still followed is marked ND; after dropout cells stay empty.
            pl.when(pl.col(f"EN_M{m}").is_null() & (pl.col("last_month") >= m))
            .then(pl.lit("ND"))
            .otherwise(pl.col(f"EN_M{m}"))
            .alias(f"EN_M{m}")
        )
    order = [f"EN_M{m}" for m in range(13)] + [f"Date_M{m}" for m in range(13)]
    follow_up = wide.select(pl.col("patient_id").alias("N° patient"), *order)
    fmt = CsvFormat(delimiter=";", decimal=",", encoding="latin-1")
    return {
        "inclusion": (f"inclusion_{centre}_{stamp}.csv", inclusion, fmt),
        "follow_up": (f"suivi_{centre}_{stamp}.csv", follow_up, fmt),
    }


def _fr_wide_mapping(centre: str) -> CentreMapping:
    fmt = CsvFormat(delimiter=";", decimal=",", encoding="latin-1")
    missing = ["", "ND", "NA"]
    return CentreMapping(
        centre_id=centre,
        description="French-locale spreadsheet CSV (;, decimal comma, dd/mm/yyyy, latin-1)",
        forms={
            "inclusion": FormMapping(
                file_pattern=f"inclusion_{centre}_*.csv",
                format=fmt,
                columns={
                    "patient_id": "N° patient",
                    "sex": "Sexe",
                    "age": "Âge",
                    "pain_diagnosis": "Diagnostic",
                    "weight_kg": "Poids (kg)",
                    "inclusion_date": "Date d'inclusion",
                },
                codes={
                    "sex": {"H": "M", "F": "F", "Homme": "M", "Femme": "F"},
                    "pain_diagnosis": {v: k for k, v in FR_DIAGNOSES.items()},
                },
                date_formats={"inclusion_date": "%d/%m/%Y"},
                missing_values=missing,
            ),
            "follow_up": FormMapping(
                file_pattern=f"suivi_{centre}_*.csv",
                format=fmt,
                layout="wide",
                id_columns={"patient_id": "N° patient"},
                wide_columns={"nprs": r"EN_M(\d+)", "call_date": r"Date_M(\d+)"},
                date_formats={"call_date": "%d/%m/%Y"},
                missing_values=missing,
            ),
        },
    )


_RENDERERS = {"redcap": _render_redcap, "fr_wide": _render_fr_wide}
_MAPPINGS = {"redcap": _redcap_mapping, "fr_wide": _fr_wide_mapping}


def _inject_faults(table: pl.DataFrame, style: str, rate: float, rng: np.random.Generator):
    """Damage about ``rate`` of the rows (one fault each); also repeat some rows verbatim."""
    if rate <= 0 or table.height == 0:
        return table, []
    injected = []
    rows = table.rows()
    columns = table.columns
    for i in range(len(rows)):
        if rng.random() >= rate:
            continue
        usable = [f for f in FAULTS[style] if any(c in columns for c in f.columns)]
        if not usable:
            continue
        fault = usable[rng.integers(len(usable))]
        col = next(c for c in fault.columns if c in columns)
        row = list(rows[i])
        if row[columns.index(col)] in (None, "", "ND"):
            continue  # nothing to damage in an empty cell
        row[columns.index(col)] = fault.value
        rows[i] = tuple(row)
        injected.append((i + 1, col, fault.kind))
    out = pl.DataFrame(rows, schema=table.schema, orient="row")
    intact = sorted(set(range(len(rows))) - {r - 1 for r, _, _ in injected})
    n_dup = min(int(rng.binomial(len(rows), rate / 4)), len(intact))
    if n_dup:  # exact copies of intact rows, as a re-sent block of an export would give
        picks = rng.choice(intact, n_dup, replace=False)
        out = pl.concat([out, out[picks.tolist()]])
        injected += [(len(rows) + k + 1, None, "exact_duplicate") for k in range(n_dup)]
    return out, injected


def _write_csv(table: pl.DataFrame, path: Path, fmt: CsvFormat) -> None:
    text = table.write_csv(separator=fmt.delimiter, null_value="")
    path.write_bytes(text.encode(fmt.encoding))

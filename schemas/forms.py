"""Pandera schemas of the canonical forms, checked row by row before anything is loaded.

Each model is the single declaration of its form: column names, dtypes, ranges, codes,
natural key. The warehouse DDL and the reader's casts derive from it. Checks are
polars expressions (never element-wise Python). ``patient_id`` is the centre's local
identifier; it is replaced by the pseudonymised ``patient_key`` after validation and
never reaches the warehouse.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandera.polars as pa
import polars as pl

# How the warehouse stores each polars dtype of the forms (one mapping for the tables'
# DDL and for the row digests, which must see the values exactly as stored).
DUCKDB_TYPES: dict[pl.DataType | type[pl.DataType], str] = {
    pl.String: "VARCHAR",
    pl.Int64: "BIGINT",
    pl.Float64: "DOUBLE",
    pl.Date: "DATE",
}

STUDY_START = dt.date(2016, 1, 1)  # no study date can precede the cohort's set-up
# The study's time axis: months since inclusion, 0 (inclusion) to ONE_YEAR (the last call);
# a month is a twelfth of a Julian year.
DAYS_PER_MONTH = 30.4375
ONE_YEAR = 12

# Canonical codes: centres' own codes are translated to these by their mapping files.
SEXES = ["F", "M"]
PAIN_DIAGNOSES = ["neuropathic", "fibromyalgia", "crps", "other"]
ROUTES = ["iv", "im", "sc", "oral", "intranasal"]
SETTINGS = ["day_hospital", "inpatient", "outpatient"]
AE_TYPES = [
    "dissociation",
    "dizziness",
    "nausea",
    "hallucination",
    "hypertension",
    "headache",
    "other",
]
SEVERITIES = ["mild", "moderate", "severe"]
DRUG_CLASSES = [
    "opioids",
    "antidepressants",
    "antiepileptics",
    "benzodiazepines",
    "nsaids",
    "other",
]
HADS_ITEMS = [f"hads_a{i}" for i in range(1, 8)] + [f"hads_d{i}" for i in range(1, 8)]
# SF-12 v1 items and their answer ranges (Ware, Kosinski & Keller 1995).
SF12_RANGES = {
    "gh1": 5,
    "pf02": 3,
    "pf04": 3,
    "rp2": 2,
    "rp3": 2,
    "re2": 2,
    "re3": 2,
    "bp2": 5,
    "mh3": 6,
    "vt2": 6,
    "mh4": 6,
    "sf2": 5,
}
MAX_DOSE_MG = 2000  # one administration; far above any ketamine protocol
MAX_DOSE_MG_PER_KG = 20
# The classic unit error of this drug is a dose per kg written as mg, or the reverse. An
# adult's ketamine session is 0.1-2 mg/kg (sub-anaesthetic infusions for chronic pain, up
# to about 5 mg/kg over a day), that is some 10 to 350 mg: a dose in mg under 5 is a dose
# per kg (0.5-3) read as mg, a dose per kg over 10 an mg dose of a small session read as
# per kg (anaesthetic induction is 1-4.5 mg/kg IV). Both are quarantined, naming the likely
# confusion, never loaded as if right.
MIN_PLAUSIBLE_DOSE_MG = 5
MAX_PLAUSIBLE_DOSE_MG_PER_KG = 10
UNIT_CONFUSIONS = {  # check name -> what a person is told
    "dose_mg_not_a_dose_per_kg": f"under {MIN_PLAUSIBLE_DOSE_MG} mg, no adult ketamine "
    "session: probably a dose per kg given as mg (check the unit)",
    "dose_per_kg_not_a_dose_in_mg": f"over {MAX_PLAUSIBLE_DOSE_MG_PER_KG} mg/kg, no ketamine "
    "session for pain: probably a dose in mg given as mg/kg (check the unit)",
}


def _not_in_future(column: str) -> pl.Expr:
    """Evaluated at validation time (a long-running server must not freeze 'today')."""
    return pl.col(column).is_null() | (pl.col(column) <= dt.date.today())


class Inclusion(pa.DataFrameModel):
    """Inclusion form (month 0, in hospital): one row per patient."""

    patient_id: str = pa.Field(nullable=False, description="centre's local id (not stored)")
    sex: str = pa.Field(isin=SEXES, description="F female, M male")
    age: int = pa.Field(ge=18, le=100, description="years at inclusion")
    pain_diagnosis: str = pa.Field(
        nullable=True,
        isin=PAIN_DIAGNOSES,
        description="main chronic pain diagnosis",
    )
    weight_kg: float = pa.Field(nullable=True, ge=30, le=250, description="kg at inclusion")
    inclusion_date: dt.date = pa.Field(ge=STUDY_START, description="date of inclusion")

    class Config:
        unique = ["patient_id"]

    @pa.check("inclusion_date", name="not_in_future")
    def inclusion_not_in_future(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(_not_in_future(data.key))


class FollowUp(pa.DataFrameModel):
    """Monthly pain follow-up: month 0 at inclusion, months 1-12 by telephone."""

    patient_id: str = pa.Field(nullable=False, description="centre's local id (not stored)")
    month: int = pa.Field(ge=0, le=12, description="months since inclusion")
    call_date: dt.date = pa.Field(nullable=True, ge=STUDY_START, description="date of call")
    nprs: int = pa.Field(ge=0, le=10, description="mean pain intensity, NPRS 0-10 integer")

    class Config:
        unique = ["patient_id", "month"]

    @pa.check("call_date", name="not_in_future")
    def call_not_in_future(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(_not_in_future(data.key))


class KetamineAdministration(pa.DataFrameModel):
    """One ketamine administration; a centre gives the dose in mg or in mg/kg."""

    patient_id: str = pa.Field(nullable=False, description="centre's local id (not stored)")
    sequence: int = pa.Field(ge=1, le=500, description="administration number for the patient")
    administration_date: dt.date = pa.Field(ge=STUDY_START, description="date given")
    dose_mg: float = pa.Field(nullable=True, gt=0, le=MAX_DOSE_MG, description="dose, mg")
    dose_mg_per_kg: float = pa.Field(
        nullable=True, gt=0, le=MAX_DOSE_MG_PER_KG, description="dose, mg/kg of body weight"
    )
    route: str = pa.Field(nullable=True, isin=ROUTES, description="route of administration")
    setting: str = pa.Field(nullable=True, isin=SETTINGS, description="care setting")

    class Config:
        unique = ["patient_id", "sequence"]

    @pa.check("administration_date", name="not_in_future")
    def given_not_in_future(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(_not_in_future(data.key))

    @pa.check("dose_mg", name="dose_mg_not_a_dose_per_kg")
    def dose_in_mg_plausible(cls, data: pa.PolarsData) -> pl.LazyFrame:
        dose = pl.col(data.key)
        return data.lazyframe.select(dose.is_null() | (dose >= MIN_PLAUSIBLE_DOSE_MG))

    @pa.check("dose_mg_per_kg", name="dose_per_kg_not_a_dose_in_mg")
    def dose_per_kg_plausible(cls, data: pa.PolarsData) -> pl.LazyFrame:
        dose = pl.col(data.key)
        return data.lazyframe.select(dose.is_null() | (dose <= MAX_PLAUSIBLE_DOSE_MG_PER_KG))

    @pa.check("dose_mg", name="dose_given_in_mg_or_mg_per_kg")
    def one_dose_unit(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(
            pl.col("dose_mg").is_not_null() | pl.col("dose_mg_per_kg").is_not_null()
        )


class Hads(pa.DataFrameModel):
    """HADS questionnaire: 14 items scored 0-3 (7 anxiety, 7 depression)."""

    patient_id: str = pa.Field(nullable=False, description="centre's local id (not stored)")
    month: int = pa.Field(ge=0, le=12, description="months since inclusion")
    hads_a1: int = pa.Field(nullable=True, ge=0, le=3, description="anxiety item 1, 0-3")
    hads_a2: int = pa.Field(nullable=True, ge=0, le=3, description="anxiety item 2, 0-3")
    hads_a3: int = pa.Field(nullable=True, ge=0, le=3, description="anxiety item 3, 0-3")
    hads_a4: int = pa.Field(nullable=True, ge=0, le=3, description="anxiety item 4, 0-3")
    hads_a5: int = pa.Field(nullable=True, ge=0, le=3, description="anxiety item 5, 0-3")
    hads_a6: int = pa.Field(nullable=True, ge=0, le=3, description="anxiety item 6, 0-3")
    hads_a7: int = pa.Field(nullable=True, ge=0, le=3, description="anxiety item 7, 0-3")
    hads_d1: int = pa.Field(nullable=True, ge=0, le=3, description="depression item 1, 0-3")
    hads_d2: int = pa.Field(nullable=True, ge=0, le=3, description="depression item 2, 0-3")
    hads_d3: int = pa.Field(nullable=True, ge=0, le=3, description="depression item 3, 0-3")
    hads_d4: int = pa.Field(nullable=True, ge=0, le=3, description="depression item 4, 0-3")
    hads_d5: int = pa.Field(nullable=True, ge=0, le=3, description="depression item 5, 0-3")
    hads_d6: int = pa.Field(nullable=True, ge=0, le=3, description="depression item 6, 0-3")
    hads_d7: int = pa.Field(nullable=True, ge=0, le=3, description="depression item 7, 0-3")

    class Config:
        unique = ["patient_id", "month"]


class Sf12(pa.DataFrameModel):
    """SF-12 version 1: 12 raw answers (baseline and month 12)."""

    patient_id: str = pa.Field(nullable=False, description="centre's local id (not stored)")
    month: int = pa.Field(isin=[0, 12], description="months since inclusion: 0 or 12")
    gh1: int = pa.Field(nullable=True, ge=1, le=5, description="general health, 1-5")
    pf02: int = pa.Field(nullable=True, ge=1, le=3, description="moderate activities, 1-3")
    pf04: int = pa.Field(nullable=True, ge=1, le=3, description="climbing stairs, 1-3")
    rp2: int = pa.Field(nullable=True, ge=1, le=2, description="physical: accomplished less, 1-2")
    rp3: int = pa.Field(nullable=True, ge=1, le=2, description="physical: limited in kind, 1-2")
    re2: int = pa.Field(nullable=True, ge=1, le=2, description="emotional: accomplished less, 1-2")
    re3: int = pa.Field(nullable=True, ge=1, le=2, description="emotional: less careful, 1-2")
    bp2: int = pa.Field(nullable=True, ge=1, le=5, description="pain interference, 1-5")
    mh3: int = pa.Field(nullable=True, ge=1, le=6, description="calm and peaceful, 1-6")
    vt2: int = pa.Field(nullable=True, ge=1, le=6, description="lot of energy, 1-6")
    mh4: int = pa.Field(nullable=True, ge=1, le=6, description="downhearted and blue, 1-6")
    sf2: int = pa.Field(nullable=True, ge=1, le=5, description="social activities, 1-5")

    class Config:
        unique = ["patient_id", "month"]


class AdverseEvent(pa.DataFrameModel):
    """An adverse effect reported after a ketamine administration."""

    patient_id: str = pa.Field(nullable=False, description="centre's local id (not stored)")
    onset_date: dt.date = pa.Field(ge=STUDY_START, description="date of onset")
    ae_type: str = pa.Field(isin=AE_TYPES, description="type of adverse effect")
    severity: str = pa.Field(nullable=True, isin=SEVERITIES, description="mild/moderate/severe")

    class Config:
        unique = ["patient_id", "onset_date", "ae_type"]

    @pa.check("onset_date", name="not_in_future")
    def onset_not_in_future(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(_not_in_future(data.key))


class ConcomitantTreatment(pa.DataFrameModel):
    """A drug class the patient takes at a timepoint."""

    patient_id: str = pa.Field(nullable=False, description="centre's local id (not stored)")
    month: int = pa.Field(ge=0, le=12, description="months since inclusion")
    drug_class: str = pa.Field(isin=DRUG_CLASSES, description="drug class")

    class Config:
        unique = ["patient_id", "month", "drug_class"]


@dataclass(frozen=True)
class Form:
    """A canonical form: its schema, its warehouse table and its natural key."""

    name: str
    schema: type[pa.DataFrameModel]
    table: str
    key: tuple[str, ...]  # natural key in the warehouse (patient_key replaces patient_id)
    date_column: str | None = None  # checked against the patient's inclusion date

    def columns(self) -> dict[str, pl.DataType]:
        """Canonical column names and polars dtypes, in declaration order."""
        return {name: column.dtype.type for name, column in self.schema.to_schema().columns.items()}


def _form(name, schema, table, *key, date_column=None) -> Form:
    return Form(name, schema, table, ("patient_key", *key), date_column)


# Load order matters: every other form refers to patients included before them.
FORMS: dict[str, Form] = {
    "inclusion": _form("inclusion", Inclusion, "patients"),
    "follow_up": _form("follow_up", FollowUp, "follow_ups", "month", date_column="call_date"),
    "ketamine": _form(
        "ketamine",
        KetamineAdministration,
        "ketamine_administrations",
        "sequence",
        date_column="administration_date",
    ),
    "hads": _form("hads", Hads, "hads", "month"),
    "sf12": _form("sf12", Sf12, "sf12", "month"),
    "adverse_events": _form(
        "adverse_events",
        AdverseEvent,
        "adverse_events",
        "onset_date",
        "ae_type",
        date_column="onset_date",
    ),
    "treatments": _form(
        "treatments", ConcomitantTreatment, "concomitant_treatments", "month", "drug_class"
    ),
}


# Natural keys of the analysis views built by transforms/derived/views.py (declared here, with the
# forms' keys, so that the quality checks and pulls share them).
VIEW_KEYS: dict[str, tuple[str, ...]] = {
    "hads_scored": ("patient_key", "month"),
    "sf12_scored": ("patient_key", "month"),
    "ketamine_doses": ("patient_key", "sequence"),
    "analysis_patient_months": ("patient_key", "month"),
    "analysis_patients": ("patient_key",),
}

# Each canonical column's short label and unit ("" where it has none), read with the fields'
# descriptions and codes by the data dictionary, the data cards and the Stata / SPSS / SAS
# variable labels (transforms/delivery/columns.py). One name means one thing in every form.
LABELS: dict[str, tuple[str, str]] = {
    "sex": ("Sex", ""),
    "age": ("Age at inclusion", "years"),
    "pain_diagnosis": ("Main chronic pain diagnosis", ""),
    "weight_kg": ("Weight at inclusion", "kg"),
    "inclusion_date": ("Inclusion date", ""),
    "month": ("Month since inclusion", "months"),
    "call_date": ("Date of the follow-up call", ""),
    "nprs": ("Mean pain intensity (NPRS)", "points, 0-10"),
    "sequence": ("Administration number", ""),
    "administration_date": ("Administration date", ""),
    "dose_mg": ("Ketamine dose", "mg"),
    "dose_mg_per_kg": ("Ketamine dose per kg of body weight", "mg/kg"),
    "route": ("Route of administration", ""),
    "setting": ("Care setting", ""),
    **{f"hads_a{i}": (f"HADS anxiety item {i}", "points, 0-3") for i in range(1, 8)},
    **{f"hads_d{i}": (f"HADS depression item {i}", "points, 0-3") for i in range(1, 8)},
    "gh1": ("SF-12 GH1 general health", "answer, 1-5"),
    "pf02": ("SF-12 PF02 moderate activities", "answer, 1-3"),
    "pf04": ("SF-12 PF04 climbing several flights", "answer, 1-3"),
    "rp2": ("SF-12 RP2 physical: accomplished less", "answer, 1-2"),
    "rp3": ("SF-12 RP3 physical: limited in kind", "answer, 1-2"),
    "re2": ("SF-12 RE2 emotional: accomplished less", "answer, 1-2"),
    "re3": ("SF-12 RE3 emotional: less careful", "answer, 1-2"),
    "bp2": ("SF-12 BP2 pain interference", "answer, 1-5"),
    "mh3": ("SF-12 MH3 calm and peaceful", "answer, 1-6"),
    "vt2": ("SF-12 VT2 a lot of energy", "answer, 1-6"),
    "mh4": ("SF-12 MH4 downhearted and blue", "answer, 1-6"),
    "sf2": ("SF-12 SF2 social activities", "answer, 1-5"),
    "onset_date": ("Onset date of the adverse effect", ""),
    "ae_type": ("Adverse effect type", ""),
    "severity": ("Adverse effect severity", ""),
    "drug_class": ("Concomitant drug class", ""),
}

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

STUDY_START = dt.date(2016, 1, 1)  # no study date can precede the cohort's set-up


def _not_in_future(column: str) -> pl.Expr:
    """Evaluated at validation time (a long-running server must not freeze 'today')."""
    return pl.col(column).is_null() | (pl.col(column) <= dt.date.today())


class Inclusion(pa.DataFrameModel):
    """Inclusion form (month 0, in hospital): one row per patient."""

    patient_id: str = pa.Field(nullable=False, description="centre's local id (not stored)")
    sex: str = pa.Field(isin=["F", "M"], description="F female, M male")
    age: int = pa.Field(ge=18, le=100, description="years at inclusion")
    pain_diagnosis: str = pa.Field(
        nullable=True,
        isin=["neuropathic", "fibromyalgia", "crps", "other"],
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


@dataclass(frozen=True)
class Form:
    """A canonical form: its schema, its warehouse table and its natural key."""

    name: str
    schema: type[pa.DataFrameModel]
    table: str
    key: tuple[str, ...]  # natural key in the warehouse (patient_key replaces patient_id)

    def columns(self) -> dict[str, pl.DataType]:
        """Canonical column names and polars dtypes, in declaration order."""
        return {name: column.dtype.type for name, column in self.schema.to_schema().columns.items()}


# Load order matters: follow-ups refer to patients included before them.
FORMS: dict[str, Form] = {
    "inclusion": Form("inclusion", Inclusion, "patients", ("patient_key",)),
    "follow_up": Form("follow_up", FollowUp, "follow_ups", ("patient_key", "month")),
}

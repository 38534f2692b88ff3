"""The parts of a mapping that compute a canonical column instead of copying one.

Declared in a centre's mapping file (``transforms.staging.mapping.FormMapping``) and applied
by ``transforms.staging.derive`` after the source values are cast:

* ``units: {dose_mg: {column: Unit}}``: the unit of each row in another column; a mg/kg
  row lands in dose_mg_per_kg, a µg row in dose_mg (x 0.001);
* ``derived``: the administration number as the rank of the date (then time) within the
  patient; age at inclusion from a birth date that is never kept; a text column (a patient
  id) joined from several source columns;
* codes written once as a named ``value_maps`` entry, matched without regard to case,
  accents or repeated spaces.

Usage::

    UnitColumn(column="Unit").factor_table("dose_mg")  # {'mg': ('dose_mg', 1.0), ...}
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# Canonical unit -> (canonical column the value lands in, factor to its unit), per family.
# dose_mg and dose_mg_per_kg are one family: a row's unit decides which column it fills.
_DOSE_UNITS: dict[str, tuple[str, float]] = {
    "mg": ("dose_mg", 1.0),
    "g": ("dose_mg", 1000.0),
    "ug": ("dose_mg", 0.001),
    "mg/kg": ("dose_mg_per_kg", 1.0),
    "ug/kg": ("dose_mg_per_kg", 0.001),
}
UNIT_TABLE: dict[str, dict[str, tuple[str, float]]] = {
    "weight_kg": {
        "kg": ("weight_kg", 1.0),
        "g": ("weight_kg", 0.001),
        "lb": ("weight_kg", 0.45359237),
    },
    "dose_mg": _DOSE_UNITS,
    "dose_mg_per_kg": _DOSE_UNITS,
}
# The usual spellings of units, after normalise_unit (lower case, no spaces, µ/mc -> u).
UNIT_SPELLINGS = {
    "milligram": "mg",
    "milligrams": "mg",
    "milligramme": "mg",
    "milligrammes": "mg",
    "gram": "g",
    "grams": "g",
    "gramme": "g",
    "grammes": "g",
    "gr": "g",
    "microgram": "ug",
    "micrograms": "ug",
    "microgramme": "ug",
    "microgrammes": "ug",
    "kilogram": "kg",
    "kilograms": "kg",
    "kilogramme": "kg",
    "kilogrammes": "kg",
    "kgs": "kg",
    "lbs": "lb",
    "pound": "lb",
    "pounds": "lb",
    "livre": "lb",
    "livres": "lb",
}


def normalise_unit(text: str) -> str:
    """'mg / kg', 'MG.kg-1', 'mcg/kg', 'µg par kg', 'milligrammes' -> 'mg/kg', 'ug/kg', 'mg';
    a value written with its unit ('0,5 mg/kg', '25mg') gives its unit, so that a dose
    column can be its own unit column (``units: {dose_mg: {column: Dose}}`` with
    ``extract: {dose_mg: '^\\s*([\\d.,]+)'}``)."""
    unit = re.sub(r"^\s*[+-]?[\d.,]+\s*", "", text).strip().casefold()
    unit = unit.replace("µ", "u").replace("μ", "u")
    unit = re.sub(r"\s+", " ", unit)
    unit = re.sub(r"\s*(?:/|\bper\b|\bpar\b)\s*", "/", unit)
    unit = re.sub(r"/kg\s*(?:kg|kgw|k\.g\.)$", "/kg", unit)  # German 'mg/kg KG' (body weight)
    unit = re.sub(r"\.?kg-1$|\.?kg\^-1$|\.?kg⁻¹$", "/kg", unit).replace(" ", "")
    unit = re.sub(r"^mc(?=g)", "u", unit)
    head, slash, tail = unit.partition("/")
    return UNIT_SPELLINGS.get(head, head) + slash + UNIT_SPELLINGS.get(tail, tail)


_DATE_PARTS = {"year": ("%Y", "%y"), "month": ("%m", "%b", "%B"), "day": ("%d", "%j")}


def date_format(value: str) -> str:
    """A strptime format that names a full date and reads back what it writes."""
    missing = [part for part, codes in _DATE_PARTS.items() if not any(c in value for c in codes)]
    if missing:
        raise ValueError(
            f"{value!r} lacks the {' and '.join(missing)} (strptime codes such as %d, %m, "
            "%Y), e.g. '%d%m%Y' for 15102017"
        )
    sample = dt.datetime(2017, 10, 15, 9, 30)
    try:
        dt.datetime.strptime(sample.strftime(value), value)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a usable strptime format ({exc})") from None
    return value


class UnitColumn(Strict):
    """The unit of each row's value is in another source column."""

    column: str = Field(description="source column holding each row's unit, e.g. 'Unit'")
    codes: dict[str, str] = Field(
        default_factory=dict, description="a centre's own unit spellings -> a known unit"
    )

    @field_validator("codes", mode="before")
    @classmethod
    def _as_text(cls, value):
        return as_text_map(value)

    def known_units(self, family: str) -> dict[str, tuple[str, float]]:
        return UNIT_TABLE.get(family, {})

    def unit_of(self, text: str) -> str:
        """The canonical unit a row's unit text names (may be unknown to the family)."""
        own = {normalise_unit(k): v for k, v in self.codes.items()}
        unit = normalise_unit(text)
        return normalise_unit(own.get(unit, unit))


class RankDerived(Strict):
    """The administration number: rank of the date, then the time, within the patient."""

    from_: Literal["rank"] = Field(alias="from")
    date: str = Field(description="the form's canonical date column, itself mapped")
    time: str | None = Field(None, description="source column holding HH:MM or HH:MM:SS")


class BirthDateDerived(Strict):
    """Age in whole years at a date of the form, from a birth date that is never kept."""

    from_: Literal["birth_date"] = Field(alias="from")
    column: str = Field(description="source column holding the birth date")
    format: str | None = Field(None, description="strptime format; ISO dates when left out")
    at: str = Field("inclusion_date", description="the form's canonical date the age is at")


class JoinDerived(Strict):
    """A text column (a patient id, say) made of several source columns."""

    from_: Literal["join"] = Field(alias="from")
    columns: list[str] = Field(min_length=2, description="source columns, in order")
    separator: str = "-"


DERIVED_RULES = ("rank", "birth_date", "join")
DerivedColumn = Annotated[
    RankDerived | BirthDateDerived | JoinDerived, Field(discriminator="from_")
]


def one_group(pattern: str, captures: str, example: str = "") -> str:
    """A regular expression with exactly one group, which captures ``captures``; otherwise
    a ValueError a person can act on (never a bare ``re.error``)."""
    try:
        groups = re.compile(pattern).groups
    except re.error as exc:
        raise ValueError(f"'{pattern}' is not a regular expression ({exc})") from None
    if groups != 1:
        raise ValueError(f"'{pattern}' needs exactly one group (the {captures}){example}")
    return pattern


def as_text_map(value):
    """YAML reads `1: F` or `Often: 2` as numbers: codes are text on both sides."""
    if not isinstance(value, dict):
        return value
    return {
        as_text(k): as_text(v) if not isinstance(v, dict) else as_text_map(v)
        for k, v in value.items()
    }


def as_text(value) -> object:
    if isinstance(value, bool) or value is None:
        return value  # 'yes' read as True: let validation say so rather than guess
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value) if isinstance(value, int | float) else value


def match_key(text: str) -> str:
    """How a value is matched to a code when it is not written exactly: case, accents and
    repeated spaces do not count ('Pas du tout ' = 'pas du  tout' = 'PAS DU TOUT')."""
    decomposed = unicodedata.normalize("NFD", text.strip())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.sub(r"\s+", " ", plain).casefold()

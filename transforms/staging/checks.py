"""What a form mapping must say to be loadable, checked when the mapping file loads.

Run every night for every centre (a broken mapping is isolated and reported, never half
applied) and by ``cohortflow check-mapping``: a mapping that cannot produce a required
column, sets a column twice, or names codes for a column it never produces is refused
with the field and a did-you-mean, instead of quarantining every row of every file.
"""

from __future__ import annotations

import fnmatch
from typing import TYPE_CHECKING

import polars as pl

from cohortflow.errors import did_you_mean
from schemas.forms import FORMS
from transforms.staging.rules import (
    UNIT_TABLE,
    BirthDateDerived,
    RankDerived,
    date_format,
    match_key,
    one_group,
)

if TYPE_CHECKING:
    from transforms.staging.mapping import FormMapping

ONE_DOSE_OF = ("dose_mg", "dose_mg_per_kg")  # the ketamine form needs one of the two


def check_form_mapping(mapping: FormMapping) -> None:
    """The form-independent rules: each canonical column set once, rules complete."""
    _set_once(mapping)
    _rules_complete(mapping)
    _row_units_complete(mapping)
    _codes_complete(mapping)


def check_produces_required(form_name: str, mapping: FormMapping) -> None:
    """Every required column of the form is read, constant or derived."""
    schema = FORMS[form_name].schema.to_schema().columns
    produced = mapping.canonical_columns()
    missing = [c for c, col in schema.items() if not col.nullable and c not in produced]
    if missing:
        raise ValueError(
            f"forms.{form_name}: required column(s) {', '.join(missing)} neither mapped "
            "(columns), constant (constants) nor derived (derived)"
        )
    if form_name == "ketamine" and not produced.intersection(ONE_DOSE_OF):
        raise ValueError(
            "forms.ketamine: no dose: map dose_mg or dose_mg_per_kg (or give the unit per "
            "row: units: {dose_mg: {column: <unit column>}})"
        )
    for name, value in mapping.constants.items():
        _constant_castable(form_name, name, value)


def _set_once(mapping: FormMapping) -> None:
    read = set(mapping.columns) | set(mapping.id_columns) | set(mapping.wide_columns)
    for section, names in (("constants", mapping.constants), ("derived", mapping.derived)):
        for name in names:
            if name in read:
                raise ValueError(f"{section}.{name}: {name} is also read from a source column")
    both = set(mapping.constants) & set(mapping.derived)
    if both:
        raise ValueError(f"constants.{sorted(both)[0]}: also derived: set it once")


def _rules_complete(mapping: FormMapping) -> None:
    produced = mapping.canonical_columns()
    for name, rule in mapping.derived.items():
        where = f"derived.{name}"
        if isinstance(rule, RankDerived):
            if mapping.layout != "long":
                raise ValueError(f"{where}: a rank needs layout 'long' (one row per record)")
            if rule.date not in mapping.columns:
                raise ValueError(
                    f"{where}.date: {rule.date!r} is not a column the form reads"
                    + did_you_mean(rule.date, set(mapping.columns))
                )
            if mapping.export != "full":
                raise ValueError(
                    f"{where}: a rank needs export: full (each file holds all the patient's "
                    "rows); with incremental files the numbers would start again at 1"
                )
        elif isinstance(rule, BirthDateDerived):
            if rule.format not in (None, "excel"):
                date_format(rule.format)
            if rule.at not in produced:
                raise ValueError(
                    f"{where}.at: {rule.at!r} is not a date the form reads"
                    + did_you_mean(rule.at, produced)
                )


def _row_units_complete(mapping: FormMapping) -> None:
    for name, unit in mapping.row_units().items():
        where = f"units.{name}"
        if name not in UNIT_TABLE:
            raise ValueError(f"{where}: no unit per row for {name}; known: {sorted(UNIT_TABLE)}")
        if mapping.layout != "long" or name not in mapping.columns:
            raise ValueError(f"{where}: {name} must be read from a column (layout long)")
        targets = {t for t, _ in UNIT_TABLE[name].values()} - {name}
        clash = targets & set(mapping.columns)
        if clash:
            raise ValueError(
                f"{where}: the unit column fills {sorted(clash)[0]}, which is also mapped"
            )
        for text, canonical in unit.codes.items():
            if unit.unit_of(canonical) not in UNIT_TABLE[name]:
                raise ValueError(
                    f"{where}.codes.{text}: {canonical!r} is not a unit of {name}; "
                    f"known: {', '.join(UNIT_TABLE[name])}"
                )


def _codes_complete(mapping: FormMapping) -> None:
    produced = mapping.canonical_columns()
    for key, pattern in mapping.extract.items():
        _extract_complete(key, pattern, produced)
    for key in mapping.missing_codes:
        if key not in produced:
            raise ValueError(
                f"missing_codes.{key}: {key} is not a column the form produces"
                + did_you_mean(key, produced)
            )
    for key, codes in mapping.codes.items():
        if isinstance(codes, str) and codes not in mapping.value_maps:
            raise ValueError(
                f"codes.{key}: no value map named {codes!r}"
                + did_you_mean(codes, set(mapping.value_maps))
            )
        glob = any(c in key for c in "*?[")
        if glob and not fnmatch.filter(sorted(produced), key):
            raise ValueError(f"codes.{key}: matches none of the columns the form produces")
        if not glob and key not in produced:
            raise ValueError(
                f"codes.{key}: {key} is not a column the form produces"
                + did_you_mean(key, produced)
            )
    for column, table in mapping.column_codes().items():
        _no_colliding_codes(f"codes.{column}", table)


def _extract_complete(key: str, pattern: str, produced: set[str]) -> None:
    where = f"extract.{key}"
    try:
        one_group(pattern, "value")
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    glob = any(c in key for c in "*?[")
    if (glob and not fnmatch.filter(sorted(produced), key)) or (not glob and key not in produced):
        raise ValueError(f"{where}: matches none of the columns the form produces")


def _no_colliding_codes(where: str, table: dict[str, str]) -> None:
    """Codes matched without case or accents must still say one thing each."""
    seen: dict[str, tuple[str, str]] = {}
    for code, value in table.items():
        key = match_key(code)
        if key in seen and seen[key][1] != value:
            raise ValueError(
                f"{where}: {seen[key][0]!r} and {code!r} differ only in case, accents or "
                f"spaces but mean {seen[key][1]!r} and {value!r}"
            )
        seen[key] = (code, value)


def _constant_castable(form_name: str, name: str, value: str) -> None:
    dtype = FORMS[form_name].columns()[name]
    cast = pl.Series([value]).str.strptime(pl.Date, "%Y-%m-%d", strict=False)
    if dtype == pl.Date and cast.is_null().any():
        raise ValueError(f"constants.{name}: {value!r} is not a date written as YYYY-MM-DD")
    if dtype.is_numeric() and pl.Series([value]).cast(dtype, strict=False).is_null().any():
        raise ValueError(f"constants.{name}: {value!r} is not a number")

"""Canonical columns a mapping computes rather than copies (``transforms.staging.rules``).

Applied in two steps of ``staging.read.stage_file``, so that a rule sees values of the type
it needs: ``text_rules`` before the cast (joined ids, constants), ``value_rules`` after it
(units given per row, ranks of dates, ages from birth dates). The source columns a rule
reads travel as ``_aux:<source>`` columns and are dropped by ``value_rules``: a birth date
leaves this module as an age, never as a date.
"""

from __future__ import annotations

import polars as pl

from transforms.staging.dates import parse_dates
from transforms.staging.mapping import FormMapping
from transforms.staging.rules import BirthDateDerived, JoinDerived, RankDerived, UnitColumn

AUX = "_aux:"


def aux(source: str) -> str:
    """The staged name of a source column read for a rule."""
    return f"{AUX}{source}"


def rule_sources(mapping: FormMapping) -> list[str]:
    """Source columns read only for rules (units, ranks, ages, joined ids)."""
    found: list[str] = [u.column for u in mapping.row_units().values()]
    for rule in mapping.derived.values():
        if isinstance(rule, RankDerived) and rule.time:
            found.append(rule.time)
        elif isinstance(rule, BirthDateDerived):
            found.append(rule.column)
        elif isinstance(rule, JoinDerived):
            found += rule.columns
    return list(dict.fromkeys(found))


def text_rules(text: pl.DataFrame, mapping: FormMapping) -> pl.DataFrame:
    """Joined ids and constants, as text (cast and validated like values read)."""
    markers = mapping.missing_values
    cleaned = {
        c: pl.when(pl.col(c).str.strip_chars().is_in(markers))
        .then(None)
        .otherwise(pl.col(c).str.strip_chars())
        .alias(c)
        for c in text.columns
        if c.startswith(AUX)
    }
    text = text.with_columns(cleaned.values()) if cleaned else text
    added = [pl.lit(value, pl.String).alias(name) for name, value in mapping.constants.items()]
    for name, rule in mapping.derived.items():
        if isinstance(rule, JoinDerived):  # a part missing: no id (concat_str gives null)
            parts = [pl.col(aux(c)) for c in rule.columns]
            added.append(pl.concat_str(parts, separator=rule.separator).alias(name))
    return text.with_columns(added) if added else text


def value_rules(frame: pl.DataFrame, mapping: FormMapping) -> tuple[pl.DataFrame, list]:
    """Per-row units, ranks and ages on the cast frame; the ``_aux:`` columns dropped.

    Returns the frame and a list of failure frames (``read.FAILURE_SCHEMA``).
    """
    failures: list[pl.DataFrame] = []
    for name, unit in mapping.row_units().items():
        frame, failed = _row_unit(frame, name, unit)
        failures.append(failed)
    for name, rule in mapping.derived.items():
        if isinstance(rule, RankDerived):
            frame = _rank(frame, name, rule)
        elif isinstance(rule, BirthDateDerived):
            frame, failed = _age(frame, name, rule)
            failures.append(failed)
    return frame.drop(c for c in frame.columns if c.startswith(AUX)), failures


def _row_unit(frame: pl.DataFrame, name: str, unit: UnitColumn):
    """The value moved to the column its row's unit names, converted; else a failure."""
    known = unit.known_units(name)
    texts = frame[aux(unit.column)].drop_nulls().unique().to_list()
    target = {t: known[unit.unit_of(t)][0] for t in texts if unit.unit_of(t) in known}
    factor = {t: known[unit.unit_of(t)][1] for t in texts if unit.unit_of(t) in known}
    given = pl.col(aux(unit.column))
    lands = given.replace_strict(target, default=None, return_dtype=pl.String)
    scaled = pl.col(name) * given.replace_strict(factor, default=None, return_dtype=pl.Float64)
    columns = sorted({t for t, _ in known.values()})
    moved = frame.with_columns(
        pl.when(lands == column)
        .then(scaled)
        .otherwise(pl.col(column) if column != name else None)
        .alias(column)
        for column in columns
    )
    has_value = pl.col(name).is_not_null()
    listed = ", ".join(known)
    failed = frame.filter(has_value & lands.is_null()).select(
        "_record",
        pl.lit(name).alias("column"),
        pl.when(given.is_null())
        .then(pl.lit("unit missing"))
        .otherwise(pl.lit("unknown unit"))
        .alias("rule"),
        given.alias("value"),
        pl.when(given.is_null())
        .then(pl.format("{} has no unit (column '{}' is empty)", pl.col(name), pl.lit(unit.column)))
        .otherwise(
            pl.format(
                "unit '{}' (column '{}') is not one of {}",
                given,
                pl.lit(unit.column),
                pl.lit(listed),
            )
        )
        .alias("message"),
    )
    return moved, failed


def _rank(frame: pl.DataFrame, name: str, rule: RankDerived) -> pl.DataFrame:
    """1, 2, ... by date, then time, then file order, within the patient; no date, no rank.

    Rows identical in every value (time included) are one administration sent twice: they
    share its rank, so that validation sets the copy aside as an exact duplicate (counted
    in the night's report) instead of loading its dose a second time.
    """
    order = [pl.col(rule.date)]
    if rule.time:
        order.append(_time_of_day(pl.col(aux(rule.time))))
    identity = [c for c in frame.columns if c not in ("_record", "_source_row", name)]
    dated = frame.filter(
        pl.col(rule.date).is_not_null() & pl.col("patient_id").is_not_null()
    ).with_columns(_first=pl.col("_record").min().over(identity))  # nulls group together
    firsts = dated.filter(pl.col("_record") == pl.col("_first"))
    ranks = firsts.sort(["patient_id", *order, "_source_row"], nulls_last=True).select(
        "_first", (pl.int_range(pl.len()).over("patient_id") + 1).cast(pl.Int64).alias(name)
    )
    ranked = dated.select("_record", "_first").join(ranks, on="_first").drop("_first")
    return frame.drop(name).join(ranked, on="_record", how="left").select(frame.columns)


def _time_of_day(text: pl.Expr) -> pl.Expr:
    """'9:30', '09:30:00', '9h30' -> a time; anything else sorts last (then file order)."""
    cleaned = text.str.replace(r"^(\d{1,2})[hH:](\d{2})$", "$1:$2:00")
    return cleaned.str.strptime(pl.Time, "%H:%M:%S", strict=False)


def _age(frame: pl.DataFrame, name: str, rule: BirthDateDerived):
    """Whole years from the birth date to ``rule.at``; an unreadable birth date is never
    shown (it is an identifier), only said to be unreadable."""
    born = parse_dates(pl.col(aux(rule.column)), rule.format)
    at = pl.col(rule.at)
    before_birthday = (at.dt.month() < born.dt.month()) | (
        (at.dt.month() == born.dt.month()) & (at.dt.day() < born.dt.day())
    )
    years = at.dt.year() - born.dt.year() - before_birthday.cast(pl.Int32)
    with_age = frame.with_columns(years.cast(pl.Int64).alias(name))
    unreadable = pl.col(aux(rule.column)).is_not_null() & born.is_null()
    expected = rule.format or "%Y-%m-%d"
    failed = frame.filter(unreadable).select(
        "_record",
        pl.lit(name).alias("column"),
        pl.lit("birth date unreadable").alias("rule"),
        pl.lit(None, pl.String).alias("value"),
        pl.lit(
            f"the birth date (column '{rule.column}') is not a date in the form {expected} "
            "(value not shown: it identifies the patient)"
        ).alias("message"),
    )
    return with_age, failed

"""Questionnaire scores, by the rules of study.md (tested against hand-computed cases).

* HADS-A and HADS-D: sum of the 7 items (0-3) of each subscale; with missing items the
  half rule: scored when at least 4 of the 7 are answered, as mean(answered) x 7.
  ``depressed``: HADS-D >= 8 (the paper's "HADS-D > 7").
* SF-12 version 1, norm-based PCS-12 and MCS-12 (Ware, Kosinski & Keller 1995): each
  item is recoded (some reversed), its category's weight is added to the constant; any
  missing or out-of-range answer gives no score. The weights are the published ones,
  shipped in ``transforms/derived/reference/sf12_v1_weights.csv``.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import polars as pl

from schemas.forms import HADS_ITEMS

HADS_MIN_ANSWERED = 4
HADS_ITEMS_PER_SCALE = 7
DEPRESSION_CUTOFF = 8
SF12_WEIGHTS = Path(__file__).parent / "reference" / "sf12_v1_weights.csv"


def _half_rule(items: list[str]) -> pl.Expr:
    answered = pl.sum_horizontal(pl.col(i).is_not_null() for i in items)
    total = pl.sum_horizontal(pl.col(i) for i in items)  # nulls are skipped
    return (
        pl.when(answered >= HADS_MIN_ANSWERED)
        .then(total.cast(pl.Float64) / answered * HADS_ITEMS_PER_SCALE)
        .otherwise(None)
    )


def hads_scores(hads: pl.DataFrame) -> pl.DataFrame:
    """Add ``hads_a``, ``hads_d`` (Float64, null when under 4 items answered), ``depressed``."""
    anxiety = [i for i in HADS_ITEMS if i.startswith("hads_a")]
    depression = [i for i in HADS_ITEMS if i.startswith("hads_d")]
    return hads.with_columns(
        hads_a=_half_rule(anxiety), hads_d=_half_rule(depression)
    ).with_columns(depressed=pl.col("hads_d") >= DEPRESSION_CUTOFF)


@cache
def sf12_weights() -> pl.DataFrame:
    """The published weights: one row per (item, recoded category), plus the constants."""
    return pl.read_csv(SF12_WEIGHTS, schema_overrides={"category": pl.Int64})


def _item_weight(item: str, rows: pl.DataFrame, component: str) -> pl.Expr:
    """The weight of ``item``'s answer, null if the answer is missing or out of range."""
    first = rows.row(0, named=True)
    raw_min, raw_max, recode = first["raw_min"], first["raw_max"], first["recode"]
    raw = pl.col(item)
    if recode == "raw":
        category = raw
    else:  # "6-raw" or "7-raw": reverse-coded so that the best category weighs 0
        category = int(recode.split("-")[0]) - raw
    weight = category.replace_strict(
        rows["category"].to_list(),
        rows[component].to_list(),
        default=None,
        return_dtype=pl.Float64,
    )
    in_range = raw.is_between(int(raw_min), int(raw_max))
    return pl.when(in_range).then(weight).otherwise(None)


def _component(component: str) -> pl.Expr:
    weights = sf12_weights()
    constant = weights.filter(pl.col("item") == "constant")[component][0]
    items = weights.filter(pl.col("item") != "constant").partition_by(
        "item", as_dict=True, maintain_order=True
    )
    terms = [_item_weight(item, rows, component) for (item,), rows in items.items()]
    # plain + propagates nulls: any missing item leaves the score missing
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total + constant


def sf12_scores(sf12: pl.DataFrame) -> pl.DataFrame:
    """Add ``pcs12`` and ``mcs12`` (Float64; null when any of the 12 answers is missing)."""
    return sf12.with_columns(pcs12=_component("pcs_weight"), mcs12=_component("mcs_weight"))

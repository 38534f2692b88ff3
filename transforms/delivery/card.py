"""The data card written beside every pulled file (``<file>.card.json``).

Whoever receives a pulled file gets what it holds and where it comes from: the snapshot
and the run that closed it, the query, the sort key, each column's type, label, unit,
description, how it was derived, rules and codes (``columns.py``), the warnings of the
pull, and how to read the file (the CSV dialect; a note on reading parquet with pandas;
for Stata, SPSS and SAS files the value labels written and what the format changes).
The ``pulls`` record copies the card's query, so the record and the card never disagree.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import polars as pl

import cohortflow
from transforms.delivery.catalogue import about, natural_key
from transforms.delivery.columns import column_doc, column_docs
from transforms.delivery.files import CSV_DIALECTS, Target
from transforms.delivery.state import State
from transforms.delivery.statfiles import STATS_FORMATS, card_notes
from transforms.warehouse.runs import now

PARQUET_READING = (
    "pandas turns integer columns with nulls into floats unless read with "
    "pd.read_parquet(path, dtype_backend='pyarrow'); polars, DuckDB, R arrow keep the types"
)


def data_card(
    frame: pl.DataFrame,
    target: Target,
    state: State,
    *,
    table: str,
    sha256: str,
    query: dict,
    warnings: Sequence[str],
    user: str,
) -> dict:
    """What the file holds and where it comes from, for whoever receives it."""
    card = {
        "file": target.path.name,
        "format": target.fmt,
        "sha256": sha256,
        "rows": frame.height,
        "table": table,
        "about": about(table),
        "snapshot": _snapshot(state),
        "query": query,
        "sort_key": list(natural_key(table)),
        "columns": column_dictionary(table, frame),
        "warnings": list(warnings),
        "pulled_at": now().isoformat(timespec="seconds") + "Z",
        "pulled_by": user,
        "cohortflow_version": cohortflow.__version__,
        "polars_version": pl.__version__,
    }
    if target.fmt == "csv":
        card["csv"] = _csv_notes(target.csv_dialect)
    elif target.fmt in STATS_FORMATS:
        card[target.fmt] = card_notes(frame, column_docs(table), target.fmt)
    else:
        card["reading"] = PARQUET_READING
    return card


def write_card(card: dict, path: Path) -> None:
    """The card as indented UTF-8 JSON (names and notes may hold accents)."""
    path.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _snapshot(state: State) -> dict:
    """The state pulled: its snapshot id, the run that closed it and how it was chosen."""
    return {
        "id": state.snapshot_id,
        "run_seq": state.run_seq,
        "run_id": state.run_id,
        "resolved_from": state.resolved_from,
    }


def _csv_notes(dialect: str) -> dict:
    """How to read the CSV: separator, decimal mark, nulls, dates, neutralised text."""
    separator, decimal_comma = CSV_DIALECTS[dialect]
    return {
        "dialect": dialect,
        "separator": separator,
        "decimal_mark": "," if decimal_comma else ".",
        "null": "empty cell",
        "dates": "ISO 8601 (YYYY-MM-DD)",
        "text_neutralised": "text starting with = + - @ tab or CR is prefixed with '",
    }


# --- the column dictionary ------------------------------------------------------------


def column_dictionary(table: str, frame: pl.DataFrame) -> list[dict]:
    """Name, type, label, unit, description, derivation, rules and codes of each column."""
    return [
        {"name": name, "type": str(dtype), **column_doc(table, name).as_card()}
        for name, dtype in frame.schema.items()
    ]

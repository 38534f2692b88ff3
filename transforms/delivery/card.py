"""The data card written beside every pulled file (``<file>.card.json``).

Whoever receives a pulled file gets what it holds and where it comes from: the snapshot
and the run that closed it, the query, the sort key, each column's type, description
(units), rules and codes, the warnings of the pull, and how to read the file (the CSV
dialect, or a note on reading parquet with pandas). The ``pulls`` record copies the
card's query, so the record and the card never disagree.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import polars as pl

import cohortflow
from schemas.forms import FORMS
from transforms.delivery import dictionary
from transforms.delivery.catalogue import TABLES, about, natural_key
from transforms.delivery.files import CSV_DIALECTS, Target
from transforms.delivery.state import State
from transforms.derived import views
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
    """Name, type, description (units) and rules or codes of each column of a pull."""
    docs = _column_docs(table)
    return [
        {"name": name, "type": str(dtype), **docs.get(name, {"description": ""})}
        for name, dtype in frame.schema.items()
    ]


def _column_docs(table: str) -> dict[str, dict]:
    """The data dictionary's sources, in its precedence (see transforms/delivery/dictionary.py)."""
    forms = [TABLES[table]] if table in TABLES else list(FORMS.values())
    docs: dict[str, dict] = {}
    for form in forms:
        for name, column in form.schema.to_schema().columns.items():
            docs[name] = _schema_doc(column)
    docs |= {name: {"description": text} for name, text in dictionary.COMMON.items()}
    if table not in TABLES:
        docs |= {name: {"description": text} for name, text in views.DERIVED_COLUMNS.items()}
    return docs


def _schema_doc(column) -> dict:
    """A schema column's description, its checks as rules and its allowed values as codes."""
    doc = {"description": column.description or ""}
    rules = [str(check.error or check.name) for check in column.checks]
    codes = [v for c in column.checks for v in c.statistics.get("allowed_values", [])]
    if rules:
        doc["rules"] = ", ".join(rules)
    if codes:
        doc["codes"] = codes
    return doc

"""Pulls as Stata (.dta), SPSS (.sav) and SAS transport (.xpt) files, labelled.

Each file carries the data dictionary's variable labels (``label, unit``:
``transforms/delivery/columns.py``). Stata and SPSS also carry value labels: a column
with declared codes (``sex``, ``pain_diagnosis``, ``severity``, ...) is written as the
integers 1..k in the codes' declared order, each labelled with its code, and a boolean
as 0/1 labelled ``no``/``yes``: what a Stata or SPSS user expects of a categorical
variable, and read back as the same codes (``pandas.read_stata``, ``haven::as_factor``).
The SAS transport format has no value labels: codes stay text, booleans 0/1.

What the formats cannot hold is said, never dropped: Stata and SPSS have no missing text
(a null text cell is written empty); SPSS names cannot start with ``_`` (the lineage
columns are written as ``lineage_file_hash``...); integers are stored as doubles (Stata
and SAS have no 64-bit integer). pyreadstat (ReadStat) writes all three formats.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from transforms.delivery.columns import ColumnDoc
from transforms.delivery.errors import PullError

STATS_FORMATS = ("dta", "sav", "xpt")
BOOLEAN_LABELS = {0: "no", 1: "yes"}
LABEL_LIMITS = {"dta": 80, "sav": 256, "xpt": 256}  # characters of a variable label
NAME_LIMITS = {"dta": 32, "sav": 64, "xpt": 32}
READING = {
    "dta": "Stata 15 (.dta): read with Stata `use`, pandas.read_stata, pyreadstat.read_dta or "
    "R haven::read_dta (haven::as_factor applies the value labels)",
    "sav": "SPSS (.sav): read with SPSS, pyreadstat.read_sav(apply_value_formats=True) or "
    "R haven::read_sav",
    "xpt": "SAS transport version 8 (.xpt): read with SAS `libname x xport`, "
    "pyreadstat.read_xport or R haven::read_xpt; codes are text (the format holds no "
    "value labels)",
}


def value_labels(frame: pl.DataFrame, docs: dict[str, ColumnDoc], fmt: str) -> dict[str, dict]:
    """Column -> {integer: code} for the columns written as labelled integers."""
    if fmt == "xpt":
        return {}
    labels: dict[str, dict] = {}
    for name, dtype in frame.schema.items():
        if dtype == pl.Boolean:
            labels[name] = dict(BOOLEAN_LABELS)
        elif dtype == pl.String and name in docs and docs[name].codes:
            labels[name] = dict(enumerate(_codes(frame[name], docs[name].codes), start=1))
    return labels


def _codes(column: pl.Series, declared: tuple) -> list[str]:
    """The declared codes in their order, then any other value present (never lost)."""
    extra = sorted(set(column.drop_nulls().unique().to_list()) - set(declared))
    return [*declared, *extra]


def renamed(frame: pl.DataFrame, fmt: str) -> dict[str, str]:
    """Names the format cannot hold -> the names written (SPSS: no leading ``_``)."""
    if fmt != "sav":
        return {}
    return {name: f"lineage_{name.lstrip('_')}" for name in frame.columns if name.startswith("_")}


def labelled_frame(frame: pl.DataFrame, labels: dict[str, dict]) -> pl.DataFrame:
    """Booleans as 0/1 and coded text as its label's integer; everything else as is."""
    casts = []
    for name, dtype in frame.schema.items():
        if dtype == pl.Boolean:
            casts.append(pl.col(name).cast(pl.Int8))
        elif name in labels:
            codes = {code: number for number, code in labels[name].items()}
            casts.append(pl.col(name).replace_strict(codes, default=None, return_dtype=pl.Int32))
    return frame.with_columns(casts)


def write_stats_file(
    frame: pl.DataFrame, path: Path, fmt: str, docs: dict[str, ColumnDoc], *, table: str
) -> None:
    """Write ``frame`` as ``fmt`` (dta, sav or xpt) with variable and value labels."""
    import pyreadstat  # deferred: imported only by a pull in one of these formats (~1 s cold)

    labels = value_labels(frame, docs, fmt)
    names = renamed(frame, fmt)
    data = labelled_frame(frame, labels).rename(names)
    _check_names(data.columns, fmt)
    variable: dict[str, str | None] = {
        names.get(name, name): docs[name].variable_label(LABEL_LIMITS[fmt])
        for name in frame.columns
        if name in docs
    }
    values = {names.get(name, name): mapping for name, mapping in labels.items()}
    if fmt == "dta":
        pyreadstat.write_dta(data, path, column_labels=variable, variable_value_labels=values)
    elif fmt == "sav":
        pyreadstat.write_sav(data, path, column_labels=variable, variable_value_labels=values)
    else:
        pyreadstat.write_xport(data, path, column_labels=variable, table_name=table[:32])


def _check_names(columns: list[str], fmt: str) -> None:
    """A name the format would refuse is one clear line, not ReadStat's error."""
    limit = NAME_LIMITS[fmt]
    too_long = [name for name in columns if len(name) > limit]
    if too_long:
        raise PullError(
            f"{', '.join(too_long)}: longer than {limit} characters, the {fmt} limit; "
            "pull fewer columns (--columns) or another format"
        )


def format_warnings(frame: pl.DataFrame, fmt: str) -> list[str]:
    """What the format changes in the file, said once to whoever pulls it."""
    return [
        f"{fmt} names cannot start with '_': {old} is written as {new}"
        for old, new in renamed(frame, fmt).items()
    ]


def card_notes(frame: pl.DataFrame, docs: dict[str, ColumnDoc], fmt: str) -> dict:
    """What the data card says about a Stata, SPSS or SAS file: how to read it, the value
    labels written, the names changed and what the format cannot hold."""
    notes = {
        "reading": READING[fmt],
        "value_labels": {
            name: {str(k): v for k, v in mapping.items()}
            for name, mapping in value_labels(frame, docs, fmt).items()
        },
        "integers": "stored as doubles (the format has no 64-bit integer)",
    }
    if fmt != "xpt":
        notes["missing_text"] = "a null text cell is written empty (the format has no missing text)"
    if renamed(frame, fmt):
        notes["renamed"] = renamed(frame, fmt)
    return notes

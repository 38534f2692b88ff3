"""One outbound file per centre, that the centre can act on: ``outbox/<centre>/``.

``<centre>_queries.xlsx`` has a sheet per kind (values to fix, rows waiting for another
fix, information) and ``<centre>_queries.csv`` the same lines in one table. Each line
names the centre's own record (its local patient id, read back from its exports when the
file is written: ``staging/local_ids.py``), the file, row and column, the problem in plain
words, the value and what is allowed, and the query's id, age and status. These files
are the only place where local ids leave the inbox (design invariant 11); they hold one
centre's lines only. Cells a spreadsheet would run as formulas are neutralised.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

import polars as pl
import xlsxwriter

from transforms.quality.lifecycle import TO_FIX, WAITING
from transforms.quality.wording import field_label
from transforms.staging.local_ids import ID_MAP_SCHEMA, local_id_map
from transforms.staging.mapping import CentreMapping
from transforms.staging.spreadsheet import spreadsheet_safe

SHEETS = {
    TO_FIX: "To fix",
    WAITING: "Waiting for another fix",
    "information": "Information",
}
COLUMNS = {
    "query_id": "query",
    "status": "status",
    "local_id": "patient (your id)",
    "month": "month",
    "file_name": "file",
    "source_row": "row",
    "field_label": "field",
    "problem": "problem",
    "value": "value",
    "allowed": "allowed",
    "opened": "opened",
}


def outbound_lines(
    queries: pl.DataFrame, information: pl.DataFrame, local_ids: pl.DataFrame
) -> pl.DataFrame:
    """One centre's lines, with its local ids: open queries first, then information."""
    open_lines = queries.with_columns(
        sheet=pl.col("kind"),
        status=pl.when(pl.col("escalated"))
        .then(pl.format("escalated: open {} nights", pl.col("nights_open")))
        .when(pl.col("is_new"))
        .then(pl.lit("new"))
        .otherwise(pl.format("open {} nights", pl.col("nights_open"))),
        opened=pl.col("opened_at").dt.date().cast(pl.String),
    )
    info = information.with_columns(
        sheet=pl.lit("information"), status=pl.lit(""), query_id=pl.lit(""), opened=pl.lit("")
    )
    lines = pl.concat([_shape(open_lines), _shape(info)], how="vertical_relaxed")
    ids = local_ids.cast(ID_MAP_SCHEMA)
    return lines.join(ids, on="patient_key", how="left", maintain_order="left").with_columns(
        field_label=pl.struct("form", "field").map_elements(
            lambda r: field_label(r["form"], r["field"]) if r["field"] else "",
            return_dtype=pl.String,
        )
    )


def _shape(frame: pl.DataFrame) -> pl.DataFrame:
    wanted = pl.Schema({
        "sheet": pl.String, "query_id": pl.String, "status": pl.String,
        "patient_key": pl.String, "month": pl.Int64, "file_name": pl.String,
        "source_row": pl.Int64, "form": pl.String, "field": pl.String,
        "problem": pl.String, "value": pl.String, "allowed": pl.String, "opened": pl.String,
    })  # fmt: skip
    missing = [pl.lit(None, t).alias(c) for c, t in wanted.items() if c not in frame.columns]
    return frame.with_columns(missing).select(list(wanted)).cast(wanted)


def write_outbox(
    outbox: Path,
    queries: pl.DataFrame,
    information: pl.DataFrame,
    local_ids: Callable[[str], pl.DataFrame],
) -> dict[str, Path]:
    """Each centre with lines gets its .xlsx and .csv (replaced whole); ``local_ids``
    gives a centre's id map. Returns centre -> the .xlsx written."""
    centres = sorted(set(queries["centre_id"]) | set(information["centre_id"]))
    written = {}
    for centre in centres:
        lines = outbound_lines(
            queries.filter(centre_id=centre),
            information.filter(centre_id=centre),
            local_ids(centre),
        )
        written[centre] = _write_centre(outbox / centre, centre, lines)
    return written


def _write_centre(folder: Path, centre: str, lines: pl.DataFrame) -> Path:
    """The centre's two files, staged in its folder and renamed into place."""
    folder.mkdir(parents=True, exist_ok=True)
    table = spreadsheet_safe(lines.select("sheet", *COLUMNS).rename(COLUMNS))
    staging = Path(tempfile.mkdtemp(dir=folder, prefix=".outbox-"))
    try:
        _write_xlsx(staging / f"{centre}_queries.xlsx", table)
        table.write_csv(staging / f"{centre}_queries.csv")
        for path in staging.iterdir():
            os.replace(path, folder / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder / f"{centre}_queries.xlsx"


def _write_xlsx(path: Path, table: pl.DataFrame) -> None:
    """A sheet per kind; text never turned into a formula or a link."""
    options = {"strings_to_formulas": False, "strings_to_urls": False}
    with xlsxwriter.Workbook(str(path), options) as workbook:
        for kind, title in SHEETS.items():
            rows = table.filter(sheet=kind).drop("sheet")
            if kind == "information":
                rows = rows.drop("query", "status", "opened")
            rows.write_excel(workbook, worksheet=title, autofit=True)


def write_outbound_files(
    outbox: Path,
    queries: pl.DataFrame,
    information: pl.DataFrame,
    *,
    inbox: Path,
    mappings: Mapping[str, CentreMapping],
    secret: str,
) -> dict[str, Path]:
    """The night's outbound files, each centre's ids read back from its own exports."""

    def ids(centre: str) -> pl.DataFrame:
        if centre not in mappings:  # a broken mapping: its files cannot be read back
            return pl.DataFrame(schema=ID_MAP_SCHEMA)
        return local_id_map(inbox, mappings[centre], secret)

    return write_outbox(outbox, queries, information, ids)

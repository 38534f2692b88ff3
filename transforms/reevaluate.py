"""A fix by a centre reaches every row that waited for it (invariant 8).

Rows of a follow-up, ketamine, HADS, ... file that failed because of another record (an
unknown or quarantined patient, a date before a wrong inclusion date) wait in quarantine.
Their file does not change when the centre fixes the inclusion, so it is never read
again as new. After each night's loading, ``reevaluate_waiting`` reads those files
again from the inbox (by content hash), maps and validates them with the centre's
current mapping, and loads the waiting records that pass now
(``transforms.warehouse.requeue``): history, quarantine and file counts follow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from cohortflow.errors import FileRejected
from schemas.forms import FORMS
from transforms.staging.inbox import files_by_hash
from transforms.staging.mapping import CentreMapping
from transforms.staging.pseudonym import Pseudonymiser
from transforms.staging.read import stage_file
from transforms.staging.validate import validate_batch
from transforms.warehouse.requeue import load_requeued, waiting_records


@dataclass(frozen=True)
class Reevaluated:
    """What re-evaluation did for one file: rows loaded now, rows still waiting, or why
    the file could not be read again."""

    centre_id: str
    file_name: str
    form: str
    rows_loaded: int
    rows_waiting: int
    problem: str | None = None


def reevaluate_waiting(
    con: duckdb.DuckDBPyConnection,
    inbox: Path,
    mappings: Mapping[str, CentreMapping],
    run_id: str,
    secret: str,
) -> list[Reevaluated]:
    """Load the quarantined rows whose blocking record was written since; one report per
    file that had such rows (in centre, form order)."""
    waiting = waiting_records(con)
    if waiting.height == 0:
        return []
    pseudonymiser = Pseudonymiser(secret)
    reports = []
    for (centre, form_name), records in waiting.group_by("centre_id", "form", maintain_order=True):
        mapping = mappings.get(str(centre))
        paths = files_by_hash(inbox / str(centre), set(records["file_hash"].to_list()))
        for (file_hash,), own in records.group_by("file_hash", maintain_order=True):
            rows, problem = _staged_rows(mapping, str(form_name), paths.get(str(file_hash)), own)
            loaded = 0
            if rows is not None and rows.height:
                rows = pseudonymiser(rows)
                loaded = load_requeued(con, FORMS[str(form_name)], rows, run_id).get(
                    str(file_hash), 0
                )
            name = own["file_name"][0]
            reports.append(
                Reevaluated(str(centre), name, str(form_name), loaded, own.height - loaded, problem)
            )
    return reports


def _staged_rows(
    mapping: CentreMapping | None, form: str, path: Path | None, records: pl.DataFrame
) -> tuple[pl.DataFrame | None, str | None]:
    """The waiting records of one file, read again and valid on their own (local ids)."""
    if path is None:
        return None, "the file is no longer in the inbox: its rows stay in quarantine"
    if mapping is None or form not in mapping.forms:
        return None, f"the centre's mapping no longer reads {form} files"
    try:
        staged = stage_file(path.read_bytes(), path, mapping.forms[form], FORMS[form])
    except FileRejected as exc:
        return None, f"the file cannot be read any more ({exc.rule}: {exc.detail})"
    valid = validate_batch([staged], FORMS[form]).valid
    queued = records.select(_record="record", queued_seq="queued_seq")
    rows = valid.join(queued, on="_record", how="inner").drop("_file")
    file_hash, centre = records["file_hash"][0], records["centre_id"][0]
    return rows.with_columns(_file_hash=pl.lit(file_hash), centre_id=pl.lit(centre)), None

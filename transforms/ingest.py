"""A night's ingestion, from staging to the warehouse: the one place the two rooms meet.

``transforms.staging.prepare.prepare_centre`` reads and maps one centre's files; it
touches no database and needs no secret (so centres run concurrently, on threads or a
Dask cluster, and the key never travels as a task input). ``load_prepared`` takes what
every centre prepared, validates each form's files together (one Pandera call per form,
not per file), pseudonymises and loads in batches of at most one file per centre: it is
the single writer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import polars as pl

from cohortflow import progress
from schemas.forms import FORMS, Form
from transforms.staging.inbox import ExportFile, Rejection
from transforms.staging.mapping import CentreMapping
from transforms.staging.order import LoadedExport, hold_late_exports
from transforms.staging.prepare import StagedExport
from transforms.staging.pseudonym import Pseudonymiser
from transforms.staging.validate import ValidatedBatch, validate_batch
from transforms.warehouse import FILE_COLUMNS, LoadBatch, load_batch, record_rejected


@dataclass
class FileReport:
    """One line of the night's per-file summary."""

    centre_id: str
    file_name: str
    form: str | None
    status: str  # loaded | rejected | skipped
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_duplicate: int = 0
    rows_new: int = 0  # of the loaded rows: keys not seen before
    rows_changed: int = 0  # corrections of rows loaded earlier (history kept)
    rows_same: int = 0  # identical to what the warehouse held
    rows_absent: int = 0  # rows of earlier exports missing from this full export (flagged)
    error: str | None = None
    restaged: bool = False  # loaded before, read again because its mapping changed
    export: ExportFile | None = None  # as staged: its export date, and notes for people


def centre_groups(mappings: list[CentreMapping], size: int) -> list[list[CentreMapping]]:
    """Centres in groups of ``size``, prepared then loaded one group after another."""
    return [mappings[start : start + size] for start in range(0, len(mappings), max(size, 1))]


def load_prepared(
    con: duckdb.DuckDBPyConnection,
    prepared: Sequence[StagedExport | Rejection],
    run_id: str,
    secret: str,
) -> list[FileReport]:
    """Validate and load what any number of centres prepared; one report per item, in order.

    Forms load in order (inclusion first, so that the other forms find their patients);
    each form's files are validated together, then loaded in batches of at most one file
    per centre (a centre's files in the order given), one transaction per batch.
    """
    reports: dict[int, FileReport] = {}
    prepared = hold_late_exports(prepared, _loaded_exports(con))  # never undo newer exports
    rejected = [(i, item) for i, item in enumerate(prepared) if isinstance(item, Rejection)]
    staged = [(i, item) for i, item in enumerate(prepared) if isinstance(item, StagedExport)]
    pseudonymiser = Pseudonymiser(secret)
    forms = [f for f in FORMS.values() if any(s.file.form == f.name for _, s in staged)]
    with progress.step("Validating and loading forms", total=len(forms)) as step:
        for form in forms:
            rejected += _load_form(con, form, staged, reports, run_id, pseudonymiser)
            step.advance()
    record_rejected(con, [_rejection_record(r) for _, r in rejected], run_id)
    for i, r in rejected:
        f = r.file
        reports[i] = FileReport(f.centre_id, f.path.name, f.form, "rejected", error=r.error)
    return [reports[i] for i in sorted(reports)]


def _load_form(con, form: Form, staged, reports: dict, run_id: str, pseudonymiser) -> list:
    """One form's files validated together, loaded in batches; returns the unusable ones."""
    items = [(i, item) for i, item in staged if item.file.form == form.name]
    checked, unusable = _validate_form(items, form)
    for wave in _waves(checked.items):
        batch = _pseudonymised_batch(checked, wave, form, pseudonymiser)
        counts = load_batch(con, batch, run_id)
        for position in wave:
            i, item = checked.items[position]
            reports[i] = FileReport(
                item.file.centre_id,
                item.file.path.name,
                form.name,
                "loaded",
                **counts[item.file.file_hash],
                export=item.file,
            )
    del checked  # before the next form's batch is built
    return unusable


@dataclass
class _CheckedForm:
    """A form's files of the night and their validation, file ``k`` being ``items[k]``."""

    items: list[tuple[int, StagedExport]]
    batch: ValidatedBatch | None  # None: no file left to load


def _validate_form(
    items: list[tuple[int, StagedExport]], form: Form
) -> tuple[_CheckedForm, list[tuple[int, Rejection]]]:
    """All the form's files validated at once; should that fail unexpectedly (a library
    panic on some input), the files that fail alone are rejected and the others kept."""
    try:
        return _CheckedForm(items, validate_batch([s.staged for _, s in items], form)), []
    except Exception:
        pass
    kept, unusable = [], []
    for i, item in items:
        try:
            validate_batch([item.staged], form)
        except Exception as exc:
            error = f"internal error while validating ({type(exc).__name__}: {exc}); report it"
            unusable.append((i, Rejection(item.file, error[:500])))
        else:
            kept.append((i, item))
    batch = validate_batch([s.staged for _, s in kept], form) if kept else None
    return _CheckedForm(kept, batch), unusable


def _waves(items: list[tuple[int, StagedExport]]) -> list[list[int]]:
    """Positions of the files grouped in batches: at most one file of a centre per batch,
    a centre's files in the order given, and never the same content twice in one batch."""
    waves: list[list[int]] = []
    contents: list[set[str]] = []
    next_wave: dict[str, int] = {}
    for position, (_, item) in enumerate(items):
        w = next_wave.get(item.file.centre_id, 0)
        while w < len(waves) and item.file.file_hash in contents[w]:
            w += 1
        if w == len(waves):
            waves.append([])
            contents.append(set())
        waves[w].append(position)
        contents[w].add(item.file.file_hash)
        next_wave[item.file.centre_id] = w + 1
    return waves


def _pseudonymised_batch(
    checked: _CheckedForm, wave: list[int], form: Form, pseudonymiser: Pseudonymiser
) -> LoadBatch:
    """The loader's view of some of a form's files: patient keys instead of local ids."""
    batch = checked.batch
    assert batch is not None  # a form with no file left has no wave
    records = []
    for position in wave:
        export, staged = checked.items[position][1].file, checked.items[position][1]
        records.append(
            {
                "_file": position,
                "file_hash": export.file_hash,
                "centre_id": export.centre_id,
                "file_name": export.path.name,
                "size_bytes": export.size_bytes,
                "rows_read": batch.rows_read[position],
                "rows_duplicate": batch.rows_duplicate[position],
                "full_export": staged.full_export,
                "export_date": export.export_date,
                "export_date_source": export.export_date_source,
                "mapping_hash": staged.mapping_hash,
            }
        )
    files = pl.DataFrame(records, schema={"_file": pl.Int32, **FILE_COLUMNS})
    lineage = files.select("_file", "centre_id", _file_hash="file_hash")

    def of_wave(frame: pl.DataFrame) -> pl.DataFrame:
        if len(wave) < len(checked.items):
            frame = frame.filter(pl.col("_file").is_in(wave))
        located = frame.with_columns(_record=batch.local_record())
        return pseudonymiser(located.join(lineage, on="_file", maintain_order="left").drop("_file"))

    quarantine = of_wave(batch.quarantine).with_columns(
        # the id itself is never stored: the pseudonym says which patient it was
        value=pl.when(pl.col("column") == "patient_id").then(None).otherwise(pl.col("value"))
    )
    keys = batch.quarantined_keys
    if len(wave) < len(checked.items):
        keys = keys.filter(pl.col("_file").is_in(wave))
    keys = keys.join(lineage.drop("_file_hash"), on="_file").drop("_file")
    return LoadBatch(
        form=form,
        files=files.drop("_file"),
        valid=of_wave(batch.valid),
        quarantine=quarantine,
        quarantined_keys=pseudonymiser(keys).drop("centre_id"),
    )


def _rejection_record(rejection: Rejection) -> dict:
    f = rejection.file
    return {
        "file_hash": f.file_hash,
        "centre_id": f.centre_id,
        "form": f.form,
        "file_name": f.path.name,
        "size_bytes": f.size_bytes,
        "error": rejection.error,
    }


def _loaded_exports(con: duckdb.DuckDBPyConnection) -> list[LoadedExport]:
    """The export dates already loaded, to hold back an export that arrives late."""
    rows = con.execute(
        "SELECT centre_id, form, file_hash, file_name, export_date, export_date_source "
        "FROM ingested_files WHERE status = 'loaded'"
    ).fetchall()
    return [LoadedExport(*row) for row in rows]

"""Staging a centre's exports: each new file read and mapped to its canonical form.

No database access and no secret: centres are prepared concurrently (threads or a Dask
cluster), and local ids stay in the process that loads them.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, replace
from pathlib import Path

from cohortflow.errors import FileNotReady, FileRejected
from schemas.forms import FORMS
from transforms.staging.inbox import (
    UNRECOGNISED,
    ExportFile,
    HashCache,
    Rejection,
    discover_centre_files,
    file_hash,
    outside,
    refused_entries,
    settling,
)
from transforms.staging.limits import DEFAULT_LIMITS, ReadLimits, check_export, check_size
from transforms.staging.mapping import CentreMapping
from transforms.staging.order import dated, in_export_order
from transforms.staging.read import StagedFile, stage_file


@dataclass
class StagedExport:
    """A file read and mapped to its form, local ids still in place (they never leave the
    process that loads them)."""

    file: ExportFile
    staged: StagedFile
    full_export: bool
    mapping_hash: str  # the form mapping it was staged with (a changed mapping re-stages)


def stage_export(
    export: ExportFile, mapping: CentreMapping, limits: ReadLimits = DEFAULT_LIMITS
) -> StagedExport | Rejection:
    """Read and map one file; a file-level problem (a limit passed included) rejects it.

    The file is measured against ``limits`` before it is read: its size before a byte of
    it is loaded, its lines, columns, rows or decompressed size before it is parsed.
    """
    if export.form == UNRECOGNISED:
        patterns = ", ".join(m.file_pattern for m in mapping.forms.values())
        return Rejection(export, f"unrecognised file: matches none of the patterns {patterns}")
    form_mapping = mapping.forms[export.form]
    try:
        check_size(export.size_bytes, export.path, limits)
        content = _read_as_discovered(export)
        check_export(content, form_mapping.format, export.path, limits)
        exempt = birth_dates_read(mapping, export.path.name)
        export = dated(export, content, form_mapping, exempt)  # before reading: cheap
        staged = stage_file(content, export.path, form_mapping, FORMS[export.form], exempt=exempt)
    except FileRejected as exc:
        return Rejection(export, f"{exc.rule}: {exc.detail}")
    return StagedExport(export, staged, form_mapping.export == "full", form_mapping.content_hash())


def birth_dates_read(mapping: CentreMapping, file_name: str) -> frozenset[str]:
    """Birth-date columns some form of the centre reads from this file to derive an age:
    the other forms reading the same file (a patients file holding several forms) do not
    reject it for them either; none of them keeps the column."""
    return frozenset(
        column
        for form in mapping.forms.values()
        if fnmatch.fnmatch(file_name, form.file_pattern)
        for column in form.birth_date_columns()
    )


def _read_as_discovered(export: ExportFile) -> bytes:
    """The file's bytes, if they are still those hashed at discovery (one consistent read).

    A file that changed or vanished since is still being written: ``FileNotReady`` (a
    file grown since is never read beyond the size it had, which the limits were checked on).
    """
    try:
        with export.path.open("rb") as handle:  # no more than was measured, plus one byte
            content = handle.read(export.size_bytes + 1)
    except FileNotFoundError:
        raise FileNotReady(export.centre_id, [export.path.name]) from None
    if len(content) != export.size_bytes or file_hash(content) != export.file_hash:
        raise FileNotReady(export.centre_id, [export.path.name])
    return content


def prepare_centre(
    inbox: Path,
    mapping: CentreMapping,
    known: set[tuple[str, str]],
    *,
    settle_seconds: float = 0.0,
    limits: ReadLimits = DEFAULT_LIMITS,
    hashes: HashCache | None = None,
) -> list[StagedExport | Rejection]:
    """Everything a centre sent since the last night, read and mapped (no database access).

    Raises ``FileNotReady`` while any of the centre's files may still be being copied:
    the centre's files load together, in order (inclusion first, then each form's files
    by export date: ``staging.order``), or not at all tonight. A file over one of
    ``limits`` is rejected alone; the centre's other files go on.
    """
    refused: list[StagedExport | Rejection] = list(refused_entries(inbox, mapping))
    if outside(inbox / mapping.centre_id, inbox):
        return refused
    known_hashes = {h for h, _ in known}
    settled = settling(inbox / mapping.centre_id, settle_seconds, known=known_hashes, hashes=hashes)
    if settled.waiting:
        raise FileNotReady(mapping.centre_id, settled.waiting)
    found = discover_centre_files(inbox, mapping, known, hashes)
    noted = [_with_note(f, settled.future.get(f.path.name)) for f in found]
    return refused + in_export_order([stage_export(f, mapping, limits) for f in noted])


def _with_note(export: ExportFile, note: str | None) -> ExportFile:
    return replace(export, notes=(*export.notes, note)) if note else export

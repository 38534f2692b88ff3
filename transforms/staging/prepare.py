"""Staging a centre's exports: each new file read and mapped to its canonical form.

No database access and no secret: centres are prepared concurrently (threads or a Dask
cluster), and local ids stay in the process that loads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cohortflow.errors import FileNotReady, FileRejected
from schemas.forms import FORMS
from transforms.staging.inbox import (
    UNRECOGNISED,
    ExportFile,
    Rejection,
    discover_centre_files,
    file_hash,
    outside,
    refused_entries,
    unsettled_files,
)
from transforms.staging.mapping import CentreMapping
from transforms.staging.read import StagedFile, stage_file


@dataclass
class StagedExport:
    """A file read and mapped to its form, local ids still in place (they never leave the
    process that loads them)."""

    file: ExportFile
    staged: StagedFile
    full_export: bool
    mapping_hash: str  # the form mapping it was staged with (a changed mapping re-stages)


def stage_export(export: ExportFile, mapping: CentreMapping) -> StagedExport | Rejection:
    """Read and map one file; a file-level problem rejects it."""
    if export.form == UNRECOGNISED:
        patterns = ", ".join(m.file_pattern for m in mapping.forms.values())
        return Rejection(export, f"unrecognised file: matches none of the patterns {patterns}")
    content = _read_as_discovered(export)
    form_mapping = mapping.forms[export.form]
    try:
        staged = stage_file(content, export.path, form_mapping, FORMS[export.form])
    except FileRejected as exc:
        return Rejection(export, f"{exc.rule}: {exc.detail}")
    return StagedExport(
        export, staged, form_mapping.export == "full", form_mapping.content_hash()
    )


def _read_as_discovered(export: ExportFile) -> bytes:
    """The file's bytes, if they are still those hashed at discovery (one consistent read).

    A file that changed or vanished since is still being written: ``FileNotReady``.
    """
    try:
        content = export.path.read_bytes()
    except FileNotFoundError:
        raise FileNotReady(export.centre_id, [export.path.name]) from None
    if file_hash(content) != export.file_hash:
        raise FileNotReady(export.centre_id, [export.path.name])
    return content


def prepare_centre(
    inbox: Path,
    mapping: CentreMapping,
    known: set[tuple[str, str]],
    *,
    settle_seconds: float = 0.0,
) -> list[StagedExport | Rejection]:
    """Everything a centre sent since the last night, read and mapped (no database access).

    Raises ``FileNotReady`` while any of the centre's files may still be being copied:
    the centre's files load together, in order (inclusion first), or not at all tonight.
    """
    refused: list[StagedExport | Rejection] = list(refused_entries(inbox, mapping))
    if outside(inbox / mapping.centre_id, inbox):
        return refused
    waiting = unsettled_files(inbox / mapping.centre_id, settle_seconds)
    if waiting:
        raise FileNotReady(mapping.centre_id, waiting)
    return refused + [
        stage_export(f, mapping) for f in discover_centre_files(inbox, mapping, known)
    ]

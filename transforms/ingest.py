"""A night's ingestion: find each centre's new exports and stage them, then validate and load.

``prepare_centre`` reads and maps one centre's files; it touches no database and needs
no secret (so centres run concurrently, on threads or a Dask cluster, and the key never
travels as a task input). ``load_prepared`` takes what every centre prepared, validates
each form's files together (one Pandera call per form, not per file), pseudonymises and
loads in batches of at most one file per centre: it is the single writer.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from cohortflow.errors import FileNotReady, FileRejected
from schemas.forms import FORMS, Form
from transforms.mapping import CentreMapping
from transforms.pseudonym import Pseudonymiser
from transforms.read import StagedFile, stage_file
from transforms.validate import ValidatedBatch, validate_batch
from transforms.warehouse import FILE_COLUMNS, LoadBatch, load_batch, record_rejected


@dataclass(frozen=True)
class ExportFile:
    centre_id: str
    path: Path
    form: str  # UNRECOGNISED: matches no form pattern of the centre's mapping
    file_hash: str
    size_bytes: int


@dataclass
class Rejection:
    file: ExportFile
    error: str


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


def file_hash(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


UNRECOGNISED = "unrecognised"  # the form recorded for a file that matches no pattern
COMPLETION_MARKER = ".done"  # "<file>.done" beside a file says its copy is complete
PARTIAL_SUFFIXES = (".part", ".partial", ".tmp", ".crdownload", ".filepart")


def unsettled_files(folder: Path, settle_seconds: float, now: float | None = None) -> list[str]:
    """Files that may still be being copied: partial downloads, or modified too recently.

    A file with a completion marker (``<name>.done``) is complete whatever its age.
    """
    now = time.time() if now is None else now
    waiting = []
    for path in _export_paths(folder, with_partial=True):
        if path.name.endswith(PARTIAL_SUFFIXES):
            waiting.append(path.name)
        elif not path.with_name(path.name + COMPLETION_MARKER).exists() and (
            now - path.stat().st_mtime < settle_seconds
        ):
            waiting.append(path.name)
    return waiting


def _export_paths(folder: Path, *, with_partial: bool = False) -> list[Path]:
    """The centre's export files: regular files (never symlinks), not hidden, not markers,
    not partial copies."""
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.iterdir()
        if _is_regular(p)
        and not p.name.startswith(".")
        and not p.name.endswith(COMPLETION_MARKER)
        and (with_partial or not p.name.endswith(PARTIAL_SUFFIXES))
    )


def _is_regular(path: Path) -> bool:
    return path.is_file() and not path.is_symlink()


def discover_centre_files(
    inbox: Path, mapping: CentreMapping, known: set[tuple[str, str]]
) -> list[ExportFile]:
    """New (file, form) pairs of a centre by content hash, in load order: inclusion first.

    A workbook holding several forms (one per sheet) gives one pair per form. The same
    content under two names is one export: only the first name (in order) is kept.
    """
    folder = inbox / mapping.centre_id
    if _outside(folder, inbox):
        return []  # reported by refused_entries
    order = [*FORMS, UNRECOGNISED]
    found, seen = [], set(known)
    for path in _export_paths(folder):
        content = path.read_bytes()
        digest = file_hash(content)
        forms = [f for f, m in mapping.forms.items() if fnmatch.fnmatch(path.name, m.file_pattern)]
        for form in forms or [UNRECOGNISED]:
            if (digest, form) not in seen:
                seen.add((digest, form))
                found.append(ExportFile(mapping.centre_id, path, form, digest, len(content)))
    return sorted(found, key=lambda f: (order.index(f.form), f.path.name))


def _outside(path: Path, inbox: Path) -> bool:
    """Whether a path resolves (through links) to somewhere outside the inbox."""
    return not path.resolve().is_relative_to(inbox.resolve())


def refused_entries(inbox: Path, mapping: CentreMapping) -> list[Rejection]:
    """What the centre's folder holds that is not read, each with the reason.

    Symbolic links are never followed (wherever they point: the inbox is the boundary of
    what the pipeline reads), nor are folders or special files read; and a centre folder
    that leads outside the inbox is not read at all. Each is reported on every night until
    it is removed.
    """
    folder = inbox / mapping.centre_id
    if not (folder.exists() or folder.is_symlink()):
        return []
    if _outside(folder, inbox):
        why = f"the centre folder leads to {folder.resolve()}: not read"
        return [_refusal(mapping, folder, "outside the inbox", why)]
    refused = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or _is_regular(path):
            continue
        if path.is_symlink():
            refusal = ("symbolic link", f"points to {os.readlink(path)}; links are not followed")
        elif path.is_dir():
            refusal = ("not a regular file", "a folder: sub-folders are not read")
        else:
            refusal = ("not a regular file", "a pipe, socket or device: not read")
        refused.append(_refusal(mapping, path, *refusal))
    return refused


def _refusal(mapping: CentreMapping, path: Path, rule: str, why: str) -> Rejection:
    """A rejection for an entry whose content is never read (hashed by its name)."""
    forms = [f for f, m in mapping.forms.items() if fnmatch.fnmatch(path.name, m.file_pattern)]
    digest = file_hash(f"not read: {path}".encode())
    export = ExportFile(mapping.centre_id, path, (forms or [UNRECOGNISED])[0], digest, 0)
    advice = "put the export itself, as a regular file, in the centre's inbox folder"
    return Rejection(export, f"{rule}: {why}; {advice}")


def centre_groups(mappings: list[CentreMapping], size: int) -> list[list[CentreMapping]]:
    """Centres in groups of ``size``, prepared then loaded one group after another."""
    return [mappings[start : start + size] for start in range(0, len(mappings), max(size, 1))]


def unconfigured_centres(inbox: Path, mappings: dict[str, CentreMapping]) -> list[str]:
    """Inbox folders without a mapping file: their files are not ingested, and we say so."""
    if not inbox.exists():
        return []
    return sorted(p.name for p in inbox.iterdir() if p.is_dir() and p.name not in mappings)


@dataclass
class StagedExport:
    """A file read and mapped to its form, local ids still in place (they never leave the
    process that loads them)."""

    file: ExportFile
    staged: StagedFile
    full_export: bool


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
    return StagedExport(export, staged, form_mapping.export == "full")


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
    if _outside(inbox / mapping.centre_id, inbox):
        return refused
    waiting = unsettled_files(inbox / mapping.centre_id, settle_seconds)
    if waiting:
        raise FileNotReady(mapping.centre_id, waiting)
    return refused + [
        stage_export(f, mapping) for f in discover_centre_files(inbox, mapping, known)
    ]


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
    rejected = [(i, item) for i, item in enumerate(prepared) if isinstance(item, Rejection)]
    staged = [(i, item) for i, item in enumerate(prepared) if isinstance(item, StagedExport)]
    pseudonymiser = Pseudonymiser(secret)
    for form in FORMS.values():
        items = [(i, item) for i, item in staged if item.file.form == form.name]
        if not items:
            continue
        checked, unusable = _validate_form(items, form)
        rejected += unusable
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
                )
        del checked  # before the next form's batch is built
    record_rejected(con, [_rejection_record(r) for _, r in rejected], run_id)
    for i, r in rejected:
        f = r.file
        reports[i] = FileReport(f.centre_id, f.path.name, f.form, "rejected", error=r.error)
    return [reports[i] for i in sorted(reports)]


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

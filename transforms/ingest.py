"""One centre's night: find its new export files, stage and validate them, then load.

``prepare_centre`` touches no database and needs no secret (so centres can run
concurrently, on threads or a Dask cluster, and the key never travels as a task input);
``load_prepared`` pseudonymises and is the single writer, called one centre at a time.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from cohortflow.errors import FileNotReady, FileRejected
from schemas.forms import FORMS
from transforms.mapping import CentreMapping
from transforms.pseudonym import pseudonymise
from transforms.read import stage_file
from transforms.validate import ValidatedFile, validate_staged
from transforms.warehouse import FileLoad, load_file, record_rejected


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


def unconfigured_centres(inbox: Path, mappings: dict[str, CentreMapping]) -> list[str]:
    """Inbox folders without a mapping file: their files are not ingested, and we say so."""
    if not inbox.exists():
        return []
    return sorted(p.name for p in inbox.iterdir() if p.is_dir() and p.name not in mappings)


@dataclass
class PreparedFile:
    """A validated file, local ids still in place (they never leave the process)."""

    file: ExportFile
    staged_keys: pl.DataFrame  # _record and natural key (local id) of every record read
    checked: ValidatedFile
    full_export: bool


def prepare_file(export: ExportFile, mapping: CentreMapping) -> PreparedFile | Rejection:
    """Read, map and validate one file; a file-level problem rejects it."""
    if export.form == UNRECOGNISED:
        patterns = ", ".join(m.file_pattern for m in mapping.forms.values())
        return Rejection(export, f"unrecognised file: matches none of the patterns {patterns}")
    form = FORMS[export.form]
    content = _read_as_discovered(export)
    try:
        staged = stage_file(content, export.path, mapping.forms[export.form], form)
    except FileRejected as exc:
        return Rejection(export, f"{exc.rule}: {exc.detail}")
    checked = validate_staged(staged, form)
    key = ["patient_id", *form.key[1:]]
    full = mapping.forms[export.form].export == "full"
    return PreparedFile(export, staged.frame.select("_record", *key), checked, full)


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
) -> list[PreparedFile | Rejection]:
    """Everything a centre sent since the last night, ready to load (no database access).

    Raises ``FileNotReady`` while any of the centre's files may still be being copied:
    the centre's files load together, in order (inclusion first), or not at all tonight.
    """
    refused: list[PreparedFile | Rejection] = list(refused_entries(inbox, mapping))
    if _outside(inbox / mapping.centre_id, inbox):
        return refused
    waiting = unsettled_files(inbox / mapping.centre_id, settle_seconds)
    if waiting:
        raise FileNotReady(mapping.centre_id, waiting)
    return refused + [
        prepare_file(f, mapping) for f in discover_centre_files(inbox, mapping, known)
    ]


def pseudonymised_load(prepared: PreparedFile, secret: str) -> FileLoad:
    """The loader's view of a prepared file: patient keys instead of local ids."""
    f, checked = prepared.file, prepared.checked
    ids = prepared.staged_keys.select("_record", "patient_id")
    quarantine = prepared.checked.quarantine.join(ids, on="_record", how="left")
    quarantine = (
        pseudonymise(quarantine, secret, f.centre_id)
        .drop("centre_id")
        .with_columns(
            # the id itself is never stored: the pseudonym says which patient it was
            value=pl.when(pl.col("column") == "patient_id").then(None).otherwise(pl.col("value"))
        )
    )
    return FileLoad(
        file_hash=f.file_hash,
        centre_id=f.centre_id,
        form=FORMS[f.form],
        file_name=f.path.name,
        size_bytes=f.size_bytes,
        valid=pseudonymise(checked.valid, secret, f.centre_id),
        quarantine=quarantine,
        rows_read=checked.rows_read,
        rows_duplicate=checked.rows_duplicate,
        present_keys=_present_keys(prepared, secret) if prepared.full_export else None,
    )


def _present_keys(prepared: PreparedFile, secret: str) -> pl.DataFrame:
    """Natural keys of every record in the file, valid or not (what the export contains)."""
    keys = prepared.staged_keys.drop("_record").drop_nulls().unique()
    return pseudonymise(keys, secret, prepared.file.centre_id).drop("centre_id")


def load_prepared(
    con: duckdb.DuckDBPyConnection,
    prepared: list[PreparedFile | Rejection],
    run_id: str,
    secret: str,
) -> list[FileReport]:
    """Pseudonymise and load a centre's files, one transaction each; report every file."""
    reports = []
    for item in prepared:
        if isinstance(item, Rejection):
            f = item.file
            record_rejected(
                con,
                file_hash=f.file_hash,
                centre_id=f.centre_id,
                form=f.form,
                file_name=f.path.name,
                size_bytes=f.size_bytes,
                error=item.error,
                run_id=run_id,
            )
            reports.append(
                FileReport(f.centre_id, f.path.name, f.form, "rejected", error=item.error)
            )
            continue
        load = pseudonymised_load(item, secret)
        counts = load_file(con, load, run_id)
        reports.append(
            FileReport(load.centre_id, load.file_name, load.form.name, "loaded", **counts)
        )
    return reports

"""The inbox of a centre: which files are new (by content hash), which are still being
copied, and what is there but never read (links, folders, entries outside the inbox)."""

from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

from schemas.forms import FORMS
from transforms.staging.mapping import CentreMapping


@dataclass(frozen=True)
class ExportFile:
    centre_id: str
    path: Path
    form: str  # UNRECOGNISED: matches no form pattern of the centre's mapping
    file_hash: str
    size_bytes: int
    export_date: dt.date | None = None  # when the centre made the export (mapping-declared)
    export_date_source: str | None = None  # where export_date came from, for people


@dataclass
class Rejection:
    file: ExportFile
    error: str


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
    if outside(folder, inbox):
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


def outside(path: Path, inbox: Path) -> bool:
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
    if outside(folder, inbox):
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

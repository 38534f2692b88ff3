"""The inbox of a centre: which files are new (by content hash), which are still being
copied, and what is there but never read (links, folders, entries outside the inbox)."""

from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
import json
import os
import time
from collections.abc import Set
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the schemas load Pandera (2 s): not for a look at the inbox alone
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
    modified: float | None = None  # modification time at discovery (POSIX seconds)
    notes: tuple[str, ...] = ()  # warnings about this file for the night's summary


@dataclass
class Rejection:
    file: ExportFile
    error: str


def file_hash(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def hash_of(path: Path) -> str:
    """The content hash of a file, read in blocks (a file over the size limit is hashed to
    be recorded as rejected, never loaded whole into memory)."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


UNRECOGNISED = "unrecognised"  # the form recorded for a file that matches no pattern
COMPLETION_MARKER = ".done"  # "<file>.done" beside a file says its copy is complete
PARTIAL_SUFFIXES = (".part", ".partial", ".tmp", ".crdownload", ".filepart")


CLOCK_SKEW_SECONDS = 60.0  # an mtime at most this far ahead: a clock a little off, wait
STABILITY_SECONDS = 2.0  # how long a file dated in the future must keep its size and mtime


@dataclass(frozen=True)
class Settling:
    """Which of a centre's files may still be being copied, and which were judged complete
    by their size alone because their modification time is in the future."""

    waiting: list[str]
    future: dict[str, str]  # file name -> the note saying why it was judged by its size


def unsettled_files(folder: Path, settle_seconds: float, now: float | None = None) -> list[str]:
    """Files that may still be being copied: partial downloads, or modified too recently."""
    return settling(folder, settle_seconds, now).waiting


def settling(
    folder: Path,
    settle_seconds: float,
    now: float | None = None,
    known: Set[str] = frozenset(),
    hashes: HashCache | None = None,
) -> Settling:
    """Files that may still be being copied: partial downloads, or modified too recently.

    A file with a completion marker (``<name>.done``) is complete whatever its age. A
    modification time in the future (beyond clock skew) says nothing about the copy: such
    a file is judged by size and mtime read twice, apart (``future_files_settled``), unless
    its content is one already loaded (``known`` hashes), so only those files cost a wait.
    """
    now = time.time() if now is None else now
    waiting, future = [], []
    for path in _export_paths(folder, with_partial=True):
        if path.name.endswith(PARTIAL_SUFFIXES):
            waiting.append(path.name)
        elif path.with_name(path.name + COMPLETION_MARKER).exists():
            continue
        elif path.stat().st_mtime > now + CLOCK_SKEW_SECONDS:
            future.append(path)
        elif now - path.stat().st_mtime < settle_seconds:
            waiting.append(path.name)
    cache = hashes or HashCache()
    unknown = [p for p in future if cache.hash_of(p, p.stat())[0] not in known]
    window = min(settle_seconds, STABILITY_SECONDS)
    steady, moving = future_files_settled(unknown, window)
    return Settling(sorted(waiting + moving), steady)


def future_files_settled(paths: list[Path], window: float) -> tuple[dict[str, str], list[str]]:
    """Files dated in the future, read twice ``window`` seconds apart: those whose size and
    mtime held still (each with a note for people), and those still changing."""
    if not paths:
        return {}, []
    before = {p: _size_and_mtime(p) for p in paths}
    time.sleep(window)
    steady, moving = {}, []
    for path, first in before.items():
        if first is None or _size_and_mtime(path) != first:
            moving.append(path.name)
            continue
        stamp = dt.datetime.fromtimestamp(first[1] / 1e9).strftime("%d/%m/%Y %H:%M")
        steady[path.name] = (
            f"modification time {stamp} is in the future (is the clock of the machine that "
            "wrote it wrong?): judged complete because its size and modification time did "
            f"not change over {window:g} s"
        )
    return steady, moving


def _size_and_mtime(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None  # gone: not steady
    return stat.st_size, stat.st_mtime_ns


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
    inbox: Path,
    mapping: CentreMapping,
    known: set[tuple[str, str]],
    hashes: HashCache | None = None,
) -> list[ExportFile]:
    """New (file, form) pairs of a centre by content hash, in load order: inclusion first.

    A workbook holding several forms (one per sheet) gives one pair per form. The same
    content under two names is one export: only the first name (in order) is kept.
    ``hashes``: content hashes known from earlier nights (``HashCache``); a file whose
    size, times and inode are unchanged is not read at all.
    """
    folder = inbox / mapping.centre_id
    if outside(folder, inbox):
        return []  # reported by refused_entries
    from schemas.forms import FORMS  # see the imports above

    order = [*FORMS, UNRECOGNISED]
    found, seen = [], set(known)
    for path in _export_paths(folder):
        stat = path.stat()
        digest, size = (hashes or HashCache()).hash_of(path, stat)
        forms = [f for f, m in mapping.forms.items() if fnmatch.fnmatch(path.name, m.file_pattern)]
        for form in forms or [UNRECOGNISED]:
            if (digest, form) not in seen:
                seen.add((digest, form))
                found.append(
                    ExportFile(mapping.centre_id, path, form, digest, size, modified=stat.st_mtime)
                )
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


def files_by_hash(folder: Path, wanted: set[str]) -> dict[str, Path]:
    """Where the exports with these content hashes are in a centre's folder (a file read
    again, e.g. to re-evaluate rows it left in quarantine); a hash not found is absent."""
    found: dict[str, Path] = {}
    for path in _export_paths(folder):
        digest = hash_of(path)
        if digest in wanted and digest not in found:
            found[digest] = path
    return found


# --- content hashes remembered between nights ------------------------------------------

VERIFY_AFTER_DAYS = 7.0  # a remembered hash older than this is checked by reading the file


@dataclass(frozen=True)
class HashCache:
    """Content hashes of inbox files, remembered between nights by (path, size, times).

    A hash is trusted while the file's size, modification time, change time (ctime: set
    by the kernel on any write, rename or metadata change, which no copy tool preserves)
    and inode are those seen when it was read, and for at most ``VERIFY_AFTER_DAYS``:
    then the file is read again (the periodic full verification). Each night reads only
    the files that are new, changed or due for verification; the rest cost a ``stat``.
    Entries: absolute path -> (size, mtime_ns, ctime_ns, inode, sha256, hashed_at).
    """

    entries: dict[str, tuple[int, int, int, int, str, float]] = field(default_factory=dict)

    def cached(self, path: Path, stat: os.stat_result, now: float | None = None) -> str | None:
        """The remembered hash of ``path`` if its stat is unchanged and it is not due."""
        entry = self.entries.get(str(path))
        if entry is None or entry[:4] != _identity(stat):
            return None
        if (time.time() if now is None else now) - entry[5] > VERIFY_AFTER_DAYS * 86400:
            return None
        return entry[4]

    def hash_of(self, path: Path, stat: os.stat_result) -> tuple[str, int]:
        """(content hash, size): remembered, else read now (not remembered: see refresh)."""
        digest = self.cached(path, stat)
        if digest is not None:
            return digest, stat.st_size
        content = path.read_bytes()
        return file_hash(content), len(content)


def _identity(stat: os.stat_result) -> tuple[int, int, int, int]:
    return stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino


def refresh_hashes(
    inbox: Path, cache: HashCache, now: float | None = None
) -> tuple[HashCache, dict[str, str]]:
    """Every export file of every centre folder hashed, reading only those the cache
    cannot vouch for. Returns the new cache (files gone are forgotten) and the inbox
    listing: path relative to the inbox -> content hash.

    A file that changes while it is read (its stat before and after differ) is listed
    with the hash read but not remembered: the next night reads it again.
    """
    moment = time.time() if now is None else now
    entries, listing = {}, {}
    folders = sorted(p for p in inbox.iterdir() if p.is_dir()) if inbox.is_dir() else []
    for folder in folders:
        if outside(folder, inbox):
            continue
        for path in _export_paths(folder):
            before = path.stat()
            digest = cache.cached(path, before, moment)
            hashed_at = cache.entries[str(path)][5] if digest is not None else moment
            if digest is None:
                digest = _hash_file(path)
            listing[str(path.relative_to(inbox))] = digest
            if _identity(path.stat()) == _identity(before):
                entries[str(path)] = (*_identity(before), digest, hashed_at)
    return HashCache(entries), listing


def _hash_file(path: Path) -> str:
    """A file's content hash, read in blocks (memory stays small whatever its size)."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def load_hash_cache(path: Path) -> HashCache:
    """The cache saved by an earlier night; empty if absent or unreadable (it is only a
    shortcut: an empty cache means every file is read once)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return HashCache({k: tuple(v) for k, v in raw["entries"].items()})
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return HashCache()


def save_hash_cache(cache: HashCache, path: Path) -> None:
    """Write the cache atomically (a temporary file renamed over the old one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.write_text(json.dumps({"entries": cache.entries}), encoding="utf-8")
    os.replace(partial, path)

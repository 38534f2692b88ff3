"""Domain errors: messages for people, printed by the CLI without a traceback."""

from __future__ import annotations

import errno
import os
import re


class CohortflowError(Exception):
    """Base class for errors a user can act on."""


class ConfigError(CohortflowError):
    """A settings or centre-mapping problem; the message names the file and field.

    ``problems``: each problem on its own, for a command that lists them a line each.
    """

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]


class FileRejected(CohortflowError):
    """A whole export file cannot be read; it is left in place and recorded as rejected."""

    def __init__(self, path: str, rule: str, detail: str) -> None:
        self.path = path
        self.rule = rule
        self.detail = detail
        super().__init__(f"{path}: rejected ({rule}): {detail}")


class WarehouseBusy(CohortflowError):
    """Another process holds the warehouse's write lock."""


class FileNotReady(CohortflowError):
    """Files still being copied into the inbox: transient, worth retrying later."""

    def __init__(self, centre_id: str, names: list[str]) -> None:
        self.centre_id = centre_id
        self.names = names
        super().__init__(
            f"{centre_id}: still being written (modified moments ago, or a partial download): "
            f"{', '.join(names)}; the centre is retried, and deferred to the next night if "
            "the files do not settle"
        )


class KeyMismatch(CohortflowError):
    """The pseudonymisation key is not the one the warehouse was built with (or cannot be
    confirmed to be): nothing was written, since another key would give every patient a
    second pseudonym. The message never holds the key, only when its fingerprint was kept."""


# --- storage: a full disk, a path without permission, a read-only file system ----------

_CAUSES = {
    errno.ENOSPC: ("no space left on the device", "free some space there and run again"),
    errno.EDQUOT: ("disk quota exceeded", "free some space there and run again"),
    errno.EACCES: ("permission denied", "let the user running cohortflow write there"),
    errno.EPERM: ("operation not permitted", "let the user running cohortflow write there"),
    errno.EROFS: ("read-only file system", "choose a writable workspace or output"),
}
# The same causes as libraries word them when they drop the errno (polars, DuckDB).
_WORDS = {
    "no space left on device": errno.ENOSPC,
    "os error 28": errno.ENOSPC,
    "disk quota exceeded": errno.EDQUOT,
    "permission denied": errno.EACCES,
    "os error 13": errno.EACCES,
    "read-only file system": errno.EROFS,
    "database or disk is full": errno.ENOSPC,  # SQLite (Prefect's database)
    "os error 30": errno.EROFS,
}
_QUOTED_PATH = re.compile(r"[\"']((?:/|[A-Za-z]:\\)[^\"']+)[\"']")


class StorageError(CohortflowError):
    """A file could not be written: the disk is full, permission is denied, or the file
    system is read-only. One line naming the path and the cause; what was being written
    is left as it was before (every writer writes beside its target, then renames)."""

    def __init__(self, path: str | os.PathLike | None, code: int) -> None:
        cause, advice = _CAUSES[code]
        self.path = str(path) if path is not None else None
        self.code = code
        where = f"cannot write {self.path}" if self.path else "cannot write"
        super().__init__(f"{where}: {cause}; {advice}")


def storage_error(exc: BaseException, path: str | os.PathLike | None = None) -> StorageError | None:
    """The storage problem behind ``exc`` as a ``StorageError``, or None.

    Looked for along the whole chain of causes and contexts: a full disk often surfaces as
    a later error (DuckDB's "cannot rollback - no transaction is active" after a failed
    write), and libraries word it differently (polars: "os error 28"). The path is the
    one the error names, else ``path``.
    """
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        if isinstance(link, StorageError):
            return link
        found = _storage_cause(link)
        if found is not None:
            code, named = found
            return StorageError(named or path, code)
        link = link.__cause__ or link.__context__
    return None


def _storage_cause(exc: BaseException) -> tuple[int, str | None] | None:
    """(errno, path named by the error) when ``exc`` itself is a storage problem."""
    if isinstance(exc, OSError) and exc.errno in _CAUSES:
        return exc.errno, exc.filename if isinstance(exc.filename, str) else None
    text = str(exc)
    lowered = text.lower()
    code = next((c for words, c in _WORDS.items() if words in lowered), None)
    if code is None:
        return None
    quoted = _QUOTED_PATH.search(text)
    return code, quoted.group(1) if quoted else None


FULL_BELOW_BYTES = 1 << 20  # a file system with less than this free is full, for our writes


def full_disk(path: str | os.PathLike) -> StorageError | None:
    """A ``StorageError`` for ``path`` if its file system is (nearly) full, else None: for
    errors that lost their cause on the way (a Prefect server on a full disk answers
    "Server error '500'")."""
    try:
        stats = os.statvfs(path)
    except OSError:
        return None
    if stats.f_bavail * stats.f_frsize >= FULL_BELOW_BYTES:
        return None
    return StorageError(path, errno.ENOSPC)


def did_you_mean(word: str, choices) -> str:
    """'; did you mean X?' naming the closest of ``choices`` to a mistyped ``word`` (a
    table, column, centre, mapping key or command), or '' when none is close."""
    import difflib  # only when a mistake is being explained

    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""

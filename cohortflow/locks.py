"""One process at a time on a workspace: an OS file lock that names its holder.

Used by the writing commands (``cohortflow/cli/preconditions.py``) and by ``serve``
(``flows/server.py``). ``flock`` is released by the kernel when the process ends,
however it ends, so a killed process never leaves a stale lock; the file keeps the
holder's description for the message of whoever comes second.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from cohortflow.errors import WarehouseBusy

WRITER_LOCK = ".cohortflow-writer.lock"
_held: set[Path] = set()  # the locks this process holds: taken again, they are a no-op


class LockHeld(Exception):
    """The lock is held by another process; ``holder`` is what it wrote in the file."""

    def __init__(self, holder: str) -> None:
        super().__init__(holder)
        self.holder = holder


@contextmanager
def exclusive(path: Path, holder: str) -> Iterator[None]:
    """Hold ``path``'s lock while the block runs, writing ``holder`` in it; ``LockHeld``
    at once if another process holds it. On Windows (no flock) it only records the holder.

    Taken again by the process that holds it (the CLI holds the writer lock, then runs a
    flow that takes it too, as a deployment's night must), it is held already: no-op.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    key = path.resolve()
    if key in _held:
        yield
        return
    with path.open("a+", encoding="utf-8") as handle:
        if sys.platform != "win32":
            import fcntl  # POSIX only

            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                raise LockHeld(handle.read().strip()) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{holder}\n")
        handle.flush()
        _held.add(key)
        try:
            yield
        finally:
            _held.discard(key)


@contextmanager
def writer_lock(workspace: Path, command: str) -> Iterator[None]:
    """Hold the workspace's writer lock while ``command`` runs, or ``WarehouseBusy`` naming
    the command and PID that hold it: one writer per workspace, whoever starts it."""
    try:
        with exclusive(workspace / WRITER_LOCK, f"`cohortflow {command}` (PID {os.getpid()})"):
            yield
    except LockHeld as held:
        raise WarehouseBusy(
            f"{workspace / 'warehouse.duckdb'} is in use by "
            f"{held.holder or 'another cohortflow command'} (one writer at a time); "
            "wait for it to finish and run again"
        ) from None


def open_duckdb(path: Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open a DuckDB file, or ``WarehouseBusy`` when another process holds it: DuckDB's
    own lock, one read-write process per file (an analyst's DuckDB session too)."""
    try:
        return duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise WarehouseBusy(
                f"{path} is in use by another cohortflow process (one writer at a time); "
                "wait for it to finish and run again"
            ) from exc
        raise


def writer_running(workspace: Path) -> str | None:
    """Who holds the writer lock now (its description), or None; read without taking the
    lock, so that asking never makes a starting night fail."""
    try:
        text = (workspace / WRITER_LOCK).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    found = re.search(r"PID (\d+)", text)
    if found is None or not process_alive(int(found.group(1))):
        return None
    return text


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host (signal 0 only checks).

    A pid reused by another program counts as alive: a run is then left ``running`` and a
    lock's holder named, rather than risk treating a live process as gone.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True

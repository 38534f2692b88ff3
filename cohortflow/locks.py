"""One process at a time on a workspace: an OS file lock that names its holder.

Used by the writing commands (``cohortflow/cli/preconditions.py``) and by ``serve``
(``flows/server.py``). ``flock`` is released by the kernel when the process ends,
however it ends, so a killed process never leaves a stale lock; the file keeps the
holder's description for the message of whoever comes second.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class LockHeld(Exception):
    """The lock is held by another process; ``holder`` is what it wrote in the file."""

    def __init__(self, holder: str) -> None:
        super().__init__(holder)
        self.holder = holder


@contextmanager
def exclusive(path: Path, holder: str) -> Iterator[None]:
    """Hold ``path``'s lock while the block runs, writing ``holder`` in it; ``LockHeld``
    at once if another process holds it. On Windows (no flock) it only records the holder."""
    path.parent.mkdir(parents=True, exist_ok=True)
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
        yield

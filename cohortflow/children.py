"""Child processes that end with the process that started them.

The Prefect server a command owns (``flows/server.py``) and the processes that write the
outbound files of a first night (``transforms/quality/outbox.py``) must not outlive a
command killed by SIGKILL, which runs no cleanup: on Linux, the kernel sends them SIGTERM
when their parent goes (``PR_SET_PDEATHSIG``). Elsewhere this is a no-op.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int | None = None) -> None:
    """In a child: receive SIGTERM when the parent process (thread) ends, even by SIGKILL.

    ``parent``: its PID, when known; a parent already gone before the call is not
    signalled by the kernel, so the child then ends at once.
    """
    if sys.platform != "linux":
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if parent is not None and os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGTERM)

"""What a writing command checks before Prefect starts: one line each, never a traceback.

Prefect's start takes seconds and prints its own tracebacks when the flow then fails; a
second ``run`` started half a second after the first would pass a check of the DuckDB
lock (the first has not opened the warehouse yet) and fail inside the flow. So each
writing command (run, ingest, fit, quality) claims the workspace's writer lock first,
before anything else, and holds it until it ends.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from cohortflow import locks
from cohortflow.errors import ConfigError, did_you_mean
from cohortflow.settings import Settings


@contextmanager
def writer_lock(settings: Settings, command: str) -> Iterator[None]:
    """Hold the workspace's writer lock while the command runs, or ``WarehouseBusy`` naming
    the command and PID that hold it. An OS lock (flock): a killed process releases it."""
    with locks.writer_lock(settings.workspace, command):
        yield


def require_workspace(settings: Settings) -> None:
    """A mistyped workspace path is named as such, with the closest folder beside it."""
    root = settings.workspace
    if root.is_dir():
        return
    parent = root.parent
    siblings = [p.name for p in parent.iterdir() if p.is_dir()] if parent.is_dir() else []
    raise ConfigError(
        f"workspace {root} does not exist{did_you_mean(root.name, siblings)} "
        "(give --workspace DIR or set COHORTFLOW_HOME)"
    )


def require_warehouse(settings: Settings) -> None:
    """A command that reads the warehouse, on a workspace where nothing has run yet."""
    require_workspace(settings)
    if not settings.warehouse.exists():
        raise ConfigError(f"no warehouse at {settings.warehouse}: nothing has run yet")


def report_broken_mappings(settings: Settings) -> None:
    """A broken mapping file is named now, one line each, and the night goes on without
    its centre (invariant 4); only when no mapping is valid is there nothing to run."""
    from transforms.staging.mapping import load_mappings_isolating

    valid, broken = load_mappings_isolating(settings.centres_config)
    if broken and not valid:
        raise ConfigError("no valid mapping file: " + "; ".join(broken.values()))
    for centre, error in broken.items():
        print(
            f"cohortflow: warning: centre {centre} is not read tonight (the others are): {error}",
            file=sys.stderr,
        )

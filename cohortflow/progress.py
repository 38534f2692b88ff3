"""Progress of long steps, for people: bars on a terminal, timestamped lines elsewhere.

Code below the command line says what it is doing and nothing more::

    with progress.step("Preparing centres", total=len(centres)) as step:
        for centre in centres:
            ...
            step.advance()

The command line decides how that is shown (``progress.showing(display_for(sys.stderr))``):
rich's bars on a terminal; plain timestamped lines, without any control character, when
the output goes to a file, cron or Prefect's logs. With no display installed (library
calls, tests, a deployment's worker) a step costs a counter and shows nothing, as
logging does without a handler.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol, TextIO

PLAIN_EVERY_SECONDS = 15.0  # a plain display repeats a long step's count this often


class Step:
    """One long step: a description, how many units it has (None: unknown), how far."""

    def __init__(self, description: str, total: int | None) -> None:
        self.description = description
        self.total = total
        self.done = 0
        self.started = time.monotonic()
        self._lock = threading.Lock()

    def advance(self, units: int = 1) -> None:
        """Count units done (thread-safe: centres finish on worker threads)."""
        with self._lock:
            self.done += units
        _DISPLAY.current.update(self)

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started


class Display(Protocol):
    def start(self, step: Step) -> None: ...
    def update(self, step: Step) -> None: ...
    def finish(self, step: Step) -> None: ...


class Silent:
    """The default: nothing shown."""

    def start(self, step: Step) -> None:
        pass

    def update(self, step: Step) -> None:
        pass

    def finish(self, step: Step) -> None:
        pass


class _Installed:
    """The display of this process, shared by its threads (centres finish on workers)."""

    current: Display = Silent()


_DISPLAY = _Installed()


@contextmanager
def step(description: str, total: int | None = None) -> Iterator[Step]:
    """A long step, shown while it runs and when it ends."""
    current = Step(description, total)
    display = _DISPLAY.current
    display.start(current)
    try:
        yield current
    finally:
        display.finish(current)


@contextmanager
def showing(display: Display) -> Iterator[None]:
    """Show the steps run inside the block on ``display`` (the command line's choice)."""
    previous, _DISPLAY.current = _DISPLAY.current, display
    live = display if isinstance(display, Bars) else None
    try:
        if live is not None:
            live.open()
        yield
    finally:
        if live is not None:
            live.close()
        _DISPLAY.current = previous


class PlainLines:
    """Timestamped lines: one when a step starts, one when it ends, and its count every
    ``every`` seconds in between. Plain text only: no colour, no carriage return."""

    def __init__(self, stream: TextIO, every: float = PLAIN_EVERY_SECONDS) -> None:
        self.stream = stream
        self.every = every
        self._last: dict[int, float] = {}
        self._lock = threading.Lock()

    def _line(self, text: str) -> None:
        stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
        with self._lock:
            self.stream.write(f"{stamp} {text}\n")
            self.stream.flush()

    def start(self, step: Step) -> None:
        self._last[id(step)] = time.monotonic()
        self._line(f"{step.description} ...")

    def update(self, step: Step) -> None:
        now = time.monotonic()
        if now - self._last.get(id(step), now) >= self.every:
            self._last[id(step)] = now
            self._line(f"{step.description}: {_count(step)}")

    def finish(self, step: Step) -> None:
        self._last.pop(id(step), None)
        counted = f"{_count(step)}, " if step.total is not None else ""
        self._line(f"{step.description}: done ({counted}{step.seconds:.1f} s)")


def _count(step: Step) -> str:
    return f"{step.done}/{step.total}" if step.total is not None else str(step.done)


class Bars:
    """rich's progress bars on a terminal: one line per running step, its count, its time."""

    def __init__(self, stream: TextIO) -> None:
        from rich.console import Console  # rich: only when a terminal shows bars
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(file=stream),
            transient=False,
        )
        self._tasks: dict[int, object] = {}

    def open(self) -> None:
        self._progress.start()

    def close(self) -> None:
        self._progress.stop()

    def start(self, step: Step) -> None:
        self._tasks[id(step)] = self._progress.add_task(step.description, total=step.total)

    def update(self, step: Step) -> None:
        task = self._tasks.get(id(step))
        if task is not None:
            self._progress.update(task, completed=step.done)  # type: ignore[arg-type]

    def finish(self, step: Step) -> None:
        task = self._tasks.pop(id(step), None)
        if task is not None:
            total = step.total if step.total is not None else step.done
            self._progress.update(task, completed=step.done, total=total)  # type: ignore[arg-type]


def display_for(stream: TextIO) -> Display:
    """Bars when ``stream`` is a terminal, plain timestamped lines otherwise."""
    isatty = getattr(stream, "isatty", None)
    return Bars(stream) if isatty is not None and isatty() else PlainLines(stream)

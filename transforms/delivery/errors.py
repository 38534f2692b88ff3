"""Why a pull cannot be done as asked: one-line errors that say what is valid.

Kept apart from the entry point so that each step of a pull (state, query, files) can
raise them without importing ``pull``; the CLI prints them without a traceback.
"""

from __future__ import annotations

from cohortflow.errors import CohortflowError


class PullError(CohortflowError):
    """A pull that cannot be done as asked; the message says what is valid."""


class UnknownTable(PullError):
    """The table or view named is not pullable."""


class UnknownColumn(PullError):
    """A column asked for is not in the table."""


class UnknownSnapshot(PullError):
    """No completed run produced the snapshot (or none had run at the date asked)."""


class OutputNotWritable(PullError):
    """The output file cannot be written where asked."""

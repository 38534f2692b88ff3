"""Domain errors: messages for people, printed by the CLI without a traceback."""

from __future__ import annotations


class CohortflowError(Exception):
    """Base class for errors a user can act on."""


class ConfigError(CohortflowError):
    """A settings or centre-mapping problem; the message names the file and field."""


class FileRejected(CohortflowError):
    """A whole export file cannot be read; it is left in place and recorded as rejected."""

    def __init__(self, path: str, rule: str, detail: str) -> None:
        self.path = path
        self.rule = rule
        self.detail = detail
        super().__init__(f"{path}: rejected ({rule}): {detail}")


class WarehouseBusy(CohortflowError):
    """Another process holds the warehouse's write lock."""

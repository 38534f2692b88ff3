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


def did_you_mean(word: str, choices) -> str:
    """'; did you mean X?' naming the closest of ``choices`` to a mistyped ``word`` (a
    table, column, centre, mapping key or command), or '' when none is close."""
    import difflib  # only when a mistake is being explained

    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""

"""One typed settings object: every knob from the environment or the command line.

``Settings.from_env`` is the only place that reads the environment; everything else takes
a ``Settings`` (or the one value it needs) as an argument. The pseudonymisation key is a
``pydantic.SecretStr``: printed, logged or stored as a Prefect flow parameter it shows as
``**********``; ``Settings.require_key`` is the one way to read it.

| setting | variable | default |
|---|---|---|
| workspace | ``COHORTFLOW_HOME`` (or ``--workspace``) | ``./cohortflow-data`` |
| pseudonym_key | ``COHORTFLOW_PSEUDONYM_KEY`` | none (a Prefect Secret block, else an error) |
| new_pseudonym_key | ``COHORTFLOW_NEW_PSEUDONYM_KEY`` | none (only ``cohortflow rekey`` reads it) |
| task_runner | ``COHORTFLOW_TASK_RUNNER`` | ``threads`` |
| max_workers | ``COHORTFLOW_MAX_WORKERS`` | 4 |
| settle_seconds | ``COHORTFLOW_SETTLE_SECONDS`` | 30 |
| centres_per_batch | ``COHORTFLOW_CENTRES_PER_BATCH`` | 100 |
| duckdb_memory | ``COHORTFLOW_DUCKDB_MEMORY`` | ``1GB`` |
| max_file_mb | ``COHORTFLOW_MAX_FILE_MB`` | 500 (an export file's size) |
| max_uncompressed_mb | ``COHORTFLOW_MAX_UNCOMPRESSED_MB`` | 2000 (a workbook, decompressed) |
| max_compression_ratio | ``COHORTFLOW_MAX_COMPRESSION_RATIO`` | 100 (a workbook's parts) |
| max_columns | ``COHORTFLOW_MAX_COLUMNS`` | 2000 |
| max_line_kb | ``COHORTFLOW_MAX_LINE_KB`` | 1000 (a CSV line) |
| max_rows | ``COHORTFLOW_MAX_ROWS`` | 5000000 (per file) |
| nightly_cron | ``COHORTFLOW_NIGHTLY_CRON`` | ``0 2 * * *`` |
| timezone | ``COHORTFLOW_TIMEZONE`` | ``Europe/Paris`` |
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import SecretStr

from cohortflow.errors import ConfigError

# Only for simulated data: the demo's pseudonyms need a key, and none is secret there.
DEMO_PSEUDONYM_KEY = "cohortflow-demo-key-simulated-data-only"
KEY_VARIABLE = "COHORTFLOW_PSEUDONYM_KEY"
NEW_KEY_VARIABLE = "COHORTFLOW_NEW_PSEUDONYM_KEY"  # a rotation's new key (never an argument)
DEFAULT_NIGHTLY_CRON = "0 2 * * *"
DEFAULT_TIMEZONE = "Europe/Paris"
_MEMORY = re.compile(r"^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$", re.IGNORECASE)

Number = TypeVar("Number", int, float)


@dataclass(frozen=True)
class Settings:
    """Where everything lives, how the night runs, and the key (never written anywhere)."""

    workspace: Path
    pseudonym_key: SecretStr | None = None
    # How per-centre reading and validation run: "threads" (default), "dask" (a local
    # Dask cluster) or "dask://host:port" / "tcp://host:port" (an existing scheduler).
    task_runner: str = "threads"
    max_workers: int = 4
    # A file modified less than this many seconds ago may still be being copied: the night
    # waits for it (retries with backoff), unless "<file>.done" marks it complete.
    settle_seconds: float = 30.0
    # Centres read, validated and loaded together: what a night holds in memory at once
    # is one group's new exports (peak 2.4 GB for 100 centres of 2,000 patients).
    centres_per_batch: int = 100
    # DuckDB keeps the blocks it scanned cached up to its limit (80 % of RAM by default):
    # a night over a million patients would hold several GB for nothing.
    duckdb_memory: str = "1GB"
    # What one export file may be (transforms.staging.limits): over a limit, the file is
    # rejected with the limit named and its centre's other files load.
    max_file_mb: float = 500.0
    max_uncompressed_mb: float = 2000.0
    max_compression_ratio: float = 100.0
    max_columns: int = 2000
    max_line_kb: float = 1000.0
    max_rows: int = 5_000_000
    nightly_cron: str = DEFAULT_NIGHTLY_CRON
    timezone: str = DEFAULT_TIMEZONE
    # The key a deliberate rotation (``cohortflow rekey``) moves the warehouse to: from the
    # environment, never the command line (arguments show in ``ps``).
    new_pseudonym_key: SecretStr | None = None

    def __post_init__(self) -> None:
        """Settings built in code are held to the rules ``from_env`` applies: the memory size
        reaches SQL, the limits must leave room for a file."""
        memory_size(self.duckdb_memory, "COHORTFLOW_DUCKDB_MEMORY")
        for field in fields(self):
            if field.name.startswith("max_") and field.name != "max_workers":
                value = getattr(self, field.name)
                if not value > 0:
                    variable = f"COHORTFLOW_{field.name.upper()}"
                    raise ConfigError(
                        f"{variable}={value!r} must be positive, e.g. {field.default}"
                    )

    @property
    def inbox(self) -> Path:
        return self.workspace / "inbox"

    @property
    def centres_config(self) -> Path:
        return self.workspace / "centres"

    @property
    def warehouse(self) -> Path:
        return self.workspace / "warehouse.duckdb"

    @property
    def artifacts(self) -> Path:
        return self.workspace / "artifacts"

    @property
    def reports(self) -> Path:
        return self.workspace / "reports"

    @property
    def outbox(self) -> Path:
        """One folder per centre: its outbound query file (with its own local ids)."""
        return self.workspace / "outbox"

    @property
    def prefect_home(self) -> Path:
        return self.workspace / ".prefect"

    @property
    def simulation(self) -> Path:
        return self.workspace / "simulation"

    def with_key(self, key: str) -> Settings:
        """The same settings with this pseudonymisation key (the demo passes its own)."""
        return replace(self, pseudonym_key=SecretStr(key))

    def require_key(self) -> str:
        """The pseudonymisation key, or a clear error saying how to provide it."""
        if self.pseudonym_key is None or not self.pseudonym_key.get_secret_value():
            raise ConfigError(
                f"no pseudonymisation key: set {KEY_VARIABLE} in the environment "
                "(a long random secret kept outside the workspace; the same key every night, "
                "or patients get new pseudonyms)"
            )
        return self.pseudonym_key.get_secret_value()

    def require_new_key(self) -> str:
        """The key a rotation moves to, or a clear error saying how to provide it."""
        if self.new_pseudonym_key is None or not self.new_pseudonym_key.get_secret_value():
            raise ConfigError(
                f"no new key: set {NEW_KEY_VARIABLE} in the environment to the new key (never "
                f"on the command line), with the current key in {KEY_VARIABLE}"
            )
        return self.new_pseudonym_key.get_secret_value()

    @classmethod
    def from_env(
        cls, workspace: str | Path | None = None, environ: Mapping[str, str] | None = None
    ) -> Settings:
        """Settings from arguments, then the environment, then defaults."""
        env = os.environ if environ is None else environ
        root = workspace or env.get("COHORTFLOW_HOME") or "cohortflow-data"
        key, new_key = env.get(KEY_VARIABLE), env.get(NEW_KEY_VARIABLE)
        return cls(
            workspace=Path(root).resolve(),
            pseudonym_key=SecretStr(key) if key else None,
            task_runner=env.get("COHORTFLOW_TASK_RUNNER") or "threads",
            max_workers=_number(env, "COHORTFLOW_MAX_WORKERS", 4, int, minimum=1),
            settle_seconds=_number(env, "COHORTFLOW_SETTLE_SECONDS", 30.0, float),
            centres_per_batch=_number(env, "COHORTFLOW_CENTRES_PER_BATCH", 100, int, minimum=1),
            duckdb_memory=_memory(env, "COHORTFLOW_DUCKDB_MEMORY", "1GB"),
            max_file_mb=_number(env, "COHORTFLOW_MAX_FILE_MB", 500.0, float, minimum=1.0),
            max_uncompressed_mb=_number(
                env, "COHORTFLOW_MAX_UNCOMPRESSED_MB", 2000.0, float, minimum=1.0
            ),
            max_compression_ratio=_number(
                env, "COHORTFLOW_MAX_COMPRESSION_RATIO", 100.0, float, minimum=1.0
            ),
            max_columns=_number(env, "COHORTFLOW_MAX_COLUMNS", 2000, int, minimum=1),
            max_line_kb=_number(env, "COHORTFLOW_MAX_LINE_KB", 1000.0, float, minimum=1.0),
            max_rows=_number(env, "COHORTFLOW_MAX_ROWS", 5_000_000, int, minimum=1),
            nightly_cron=_cron(env, "COHORTFLOW_NIGHTLY_CRON", DEFAULT_NIGHTLY_CRON),
            timezone=_timezone(env, "COHORTFLOW_TIMEZONE", DEFAULT_TIMEZONE),
            new_pseudonym_key=SecretStr(new_key) if new_key else None,
        )


def _number(
    env: Mapping[str, str],
    variable: str,
    default: Number,
    kind: Callable[[str], Number],
    *,
    minimum: Number | None = None,
) -> Number:
    """A count or duration; ``minimum`` where less would stall the night (0 workers)."""
    text = env.get(variable)
    if text is None or text == "":
        return default
    low = 0 if minimum is None else minimum
    try:
        value = kind(text)
    except ValueError:
        raise ConfigError(f"{variable}={text!r} is not a number, e.g. {default}") from None
    if value < low:
        rule = "must not be negative" if low == 0 else f"must be at least {low}"
        raise ConfigError(f"{variable}={text!r} {rule}, e.g. {default}")
    return value


def _cron(env: Mapping[str, str], variable: str, default: str) -> str:
    """A cron expression Prefect's ``Cron`` schedule accepts (croniter: the parser Prefect
    vendors): refused here, in one line, rather than as a traceback when ``serve`` builds
    its schedules."""
    text = (env.get(variable) or default).strip()
    fields = text.split()
    hashed = any(field.casefold() in ("r", "h") for field in fields)  # Prefect refuses these
    if hashed or not croniter.is_valid(text):
        raise ConfigError(
            f"{variable}={text!r} is not a cron expression (minute hour day month weekday), "
            f"e.g. {default!r} for 02:00 every day"
        )
    return text


def _timezone(env: Mapping[str, str], variable: str, default: str) -> str:
    """An IANA time zone name (what Prefect's schedules take), checked against tzdata."""
    text = (env.get(variable) or default).strip()
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"{variable}={text!r} is not a known time zone: give an IANA name, e.g. {default!r}"
        ) from None
    return text


def _memory(env: Mapping[str, str], variable: str, default: str) -> str:
    return memory_size((env.get(variable) or default).strip(), variable)


def memory_size(text: str, variable: str = "memory_limit") -> str:
    """A DuckDB memory size such as 1GB or 512MiB, else a one-line ConfigError: checked
    wherever it is set, since it reaches SQL."""
    if not isinstance(text, str) or not _MEMORY.match(text):
        raise ConfigError(f"{variable}={text!r}: give a size such as 1GB or 512MiB")
    return text


def configure_prefect(settings: Settings, *, quiet: bool = False) -> None:
    """Point Prefect at the workspace and keep it offline; call before importing prefect.

    Prefect reads its own settings from the environment, so this writes them there. With
    PREFECT_API_URL set, that server is used; otherwise Prefect starts a temporary local
    server whose database lives in the workspace.
    """
    settings.prefect_home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_HOME", str(settings.prefect_home))
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    os.environ["DO_NOT_TRACK"] = "1"
    os.environ.setdefault("PREFECT_UI_ENABLED", "false")
    if quiet:  # the demo prints its own summary (warnings included); logs would bury it
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "ERROR")

"""One typed settings object, read once from the environment and passed explicitly."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cohortflow.errors import ConfigError

# Only for simulated data: the demo's pseudonyms need a key, and none is secret there.
DEMO_PSEUDONYM_KEY = "cohortflow-demo-key-simulated-data-only"
KEY_VARIABLE = "COHORTFLOW_PSEUDONYM_KEY"


@dataclass(frozen=True)
class Settings:
    """Where everything lives, and the pseudonymisation key (never written anywhere)."""

    workspace: Path
    pseudonym_key: str | None = None
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
    def prefect_home(self) -> Path:
        return self.workspace / ".prefect"

    @property
    def simulation(self) -> Path:
        return self.workspace / "simulation"

    def require_key(self) -> str:
        """The pseudonymisation key, or a clear error saying how to provide it."""
        if not self.pseudonym_key:
            raise ConfigError(
                f"no pseudonymisation key: set {KEY_VARIABLE} in the environment "
                "(a long random secret kept outside the workspace; the same key every night, "
                "or patients get new pseudonyms)"
            )
        return self.pseudonym_key

    @classmethod
    def from_env(cls, workspace: str | Path | None = None) -> Settings:
        """Settings from arguments, then the environment, then defaults."""
        root = workspace or os.environ.get("COHORTFLOW_HOME") or "cohortflow-data"
        return cls(
            workspace=Path(root).resolve(),
            pseudonym_key=os.environ.get(KEY_VARIABLE),
            task_runner=os.environ.get("COHORTFLOW_TASK_RUNNER", "threads"),
            max_workers=_number("COHORTFLOW_MAX_WORKERS", 4, int),
            settle_seconds=_number("COHORTFLOW_SETTLE_SECONDS", 30.0, float),
            centres_per_batch=_number("COHORTFLOW_CENTRES_PER_BATCH", 100, int),
        )


def _number(variable: str, default, kind):
    text = os.environ.get(variable)
    if text is None or text == "":
        return default
    try:
        value = kind(text)
    except ValueError:
        raise ConfigError(f"{variable}={text!r} is not a number") from None
    if value < 0:
        raise ConfigError(f"{variable}={text!r} must not be negative")
    return value


def configure_prefect(settings: Settings, *, quiet: bool = False) -> None:
    """Point Prefect at the workspace and keep it offline; call before importing prefect.

    With PREFECT_API_URL set, that server is used; otherwise Prefect starts a temporary
    local server whose database lives in the workspace.
    """
    settings.prefect_home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_HOME", str(settings.prefect_home))
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    os.environ["DO_NOT_TRACK"] = "1"
    os.environ.setdefault("PREFECT_UI_ENABLED", "false")
    if quiet:  # the demo prints its own summary (warnings included); logs would bury it
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "ERROR")

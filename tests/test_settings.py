"""Settings: read once, Prefect kept in the workspace and offline."""

from __future__ import annotations

import os

import pytest

from cohortflow.errors import ConfigError
from cohortflow.settings import Settings, configure_prefect


def test_settings_default_to_cohortflow_home(monkeypatch, tmp_path):
    monkeypatch.setenv("COHORTFLOW_HOME", str(tmp_path))
    settings = Settings.from_env()
    assert settings.workspace == tmp_path
    assert settings.warehouse == tmp_path / "warehouse.duckdb"
    assert Settings.from_env(tmp_path / "other").inbox == tmp_path / "other" / "inbox"


def test_settings_without_key_explains_what_to_do(tmp_path):
    with pytest.raises(ConfigError, match="COHORTFLOW_PSEUDONYM_KEY"):
        Settings.from_env(tmp_path).require_key()


def test_settings_read_every_knob_from_the_environment_given(tmp_path):
    """It is the one reader of the environment: each variable lands in its typed field."""
    env = {
        "COHORTFLOW_HOME": str(tmp_path),
        "COHORTFLOW_PSEUDONYM_KEY": "k" * 32,
        "COHORTFLOW_TASK_RUNNER": "dask",
        "COHORTFLOW_MAX_WORKERS": "2",
        "COHORTFLOW_SETTLE_SECONDS": "0.5",
        "COHORTFLOW_CENTRES_PER_BATCH": "7",
        "COHORTFLOW_DUCKDB_MEMORY": "512MiB",
        "COHORTFLOW_NIGHTLY_CRON": "* * * * *",
        "COHORTFLOW_TIMEZONE": "UTC",
    }
    settings = Settings.from_env(environ=env)
    assert (settings.workspace, settings.require_key()) == (tmp_path, "k" * 32)
    assert (settings.task_runner, settings.max_workers, settings.settle_seconds) == ("dask", 2, 0.5)
    assert (settings.centres_per_batch, settings.duckdb_memory) == (7, "512MiB")
    assert (settings.nightly_cron, settings.timezone) == ("* * * * *", "UTC")
    defaults = Settings.from_env(tmp_path, environ={})
    assert (defaults.duckdb_memory, defaults.nightly_cron, defaults.timezone) == (
        "1GB",
        "0 2 * * *",
        "Europe/Paris",
    )


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("COHORTFLOW_MAX_WORKERS", "four", "is not a number"),
        ("COHORTFLOW_SETTLE_SECONDS", "-1", "must not be negative"),
        ("COHORTFLOW_DUCKDB_MEMORY", "1GB'; DROP TABLE runs; --", "a size such as 1GB"),
    ],
)
def test_settings_refuse_a_bad_value_naming_the_variable(tmp_path, variable, value, message):
    with pytest.raises(ConfigError, match=f"{variable}.*{message}"):
        Settings.from_env(tmp_path, environ={variable: value})


def test_the_key_never_shows_when_settings_are_printed_or_serialised(tmp_path):
    """Prefect stores flow parameters with FastAPI's encoder: the key is masked there too."""
    from fastapi.encoders import jsonable_encoder

    settings = Settings.from_env(tmp_path, environ={}).with_key("s3cret-key-value")
    assert "s3cret" not in repr(settings)
    assert jsonable_encoder(settings)["pseudonym_key"] == "**********"
    assert settings.require_key() == "s3cret-key-value"


def test_configure_prefect_turns_telemetry_off_and_stays_in_the_workspace(monkeypatch, tmp_path):
    for name in ("PREFECT_HOME", "PREFECT_SERVER_ANALYTICS_ENABLED", "DO_NOT_TRACK"):
        monkeypatch.delenv(name, raising=False)
    configure_prefect(Settings.from_env(tmp_path))
    assert os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    assert os.environ["DO_NOT_TRACK"] == "1"
    assert os.environ["PREFECT_HOME"] == str(tmp_path / ".prefect")


def test_network_guard_blocks_connections_beyond_loopback():
    """The suite's guard is live: reaching out from a test fails it."""
    import socket

    with socket.socket() as sock, pytest.raises(AssertionError, match="reach the network"):
        sock.connect(("192.0.2.1", 80))  # TEST-NET-1: never routed

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

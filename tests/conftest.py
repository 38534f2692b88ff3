"""Shared fixtures: a clean environment for every test, small simulated workspaces."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from simulator.write import simulate_into_workspace

TEST_DATA = Path(__file__).resolve().parent / "data"
TEST_KEY = "test-only-pseudonymisation-key"


LOOPBACK = ("127.", "::1", "localhost")


@pytest.fixture(autouse=True, scope="session")
def _no_network():
    """Any connection beyond this machine fails the test that makes it (loopback is fine:
    the Prefect harness serves on 127.0.0.1)."""
    real_connect = socket.socket.connect

    def guarded(sock, address):
        host = address[0] if isinstance(address, tuple) else str(address)
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not host.startswith(LOOPBACK):
            raise AssertionError(f"a test tried to reach the network: {address!r}")
        return real_connect(sock, address)

    socket.socket.connect = guarded
    yield
    socket.socket.connect = real_connect


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    """No test sees the developer's cohortflow settings or leaks its own."""
    for name in list(os.environ):
        if name.startswith("COHORTFLOW_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def small_export_workspace(tmp_path_factory) -> Path:
    """A 60-patient, 6-centre workspace with faults injected; do not modify (copy it)."""
    root = tmp_path_factory.mktemp("small")
    simulate_into_workspace(root, n_patients=60, n_centres=6, seed=7, fault_rate=0.05)
    return root


@pytest.fixture
def workspace(small_export_workspace, tmp_path) -> Path:
    """A private, modifiable copy of the small workspace."""
    import shutil

    target = tmp_path / "ws"
    shutil.copytree(small_export_workspace, target)
    return target


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory):
    """One temporary Prefect server (~15 s to start) shared by every flow test."""
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    os.environ["DO_NOT_TRACK"] = "1"
    os.environ.setdefault("PREFECT_HOME", str(tmp_path_factory.mktemp("prefect-home")))
    # Prefect binds its log handler to sys.stderr on import: import it here, under pytest's
    # session-wide capture, not inside a test whose capsys stream is closed afterwards.
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield

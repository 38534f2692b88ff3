"""Fixtures of the robustness tests: a fault-free simulated workspace, one per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.write import simulate_into_workspace


@pytest.fixture(scope="session")
def clean_exports(tmp_path_factory) -> Path:
    """Four centres, one per export style (C01 REDCap CSV, C02 French wide CSV, C03 XLSX,
    C04 parquet), without injected faults: each hostile case is then the only damage."""
    root = tmp_path_factory.mktemp("clean")
    simulate_into_workspace(root, n_patients=40, n_centres=4, seed=7, fault_rate=0.0)
    return root

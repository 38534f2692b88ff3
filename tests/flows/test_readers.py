"""Readers never wait for the night and never break it (design invariant 10).

Analysts read ``published/warehouse.duckdb``, a copy replaced after each committed night;
pulls are recorded in ``pulls.duckdb``. These tests hold that copy open in another
process while a night runs, pull in the middle of a night, and crash a night.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import duckdb
import polars as pl
import pytest

from cohortflow.cli import main
from tests.conftest import TEST_KEY

pytestmark = pytest.mark.e2e

ANALYST = """
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
for _ in sys.stdin:  # one count of patients per line asked, on the same connection
    print(con.execute("SELECT count(*) FROM patients").fetchone()[0], flush=True)
"""


@pytest.fixture
def keyed(monkeypatch):
    monkeypatch.setenv("COHORTFLOW_PSEUDONYM_KEY", TEST_KEY)
    monkeypatch.setenv("COHORTFLOW_SETTLE_SECONDS", "0")  # the fixtures' files are fresh


@pytest.fixture
def two_nights(workspace, tmp_path):
    """The workspace without centre C06 (night 1), and a function that brings it back
    (night 2 then changes the data)."""
    held = tmp_path / "C06"
    shutil.move(workspace / "inbox" / "C06", held)
    return workspace, lambda: shutil.move(held, workspace / "inbox" / "C06")


def _patients(path) -> int:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute("SELECT count(*) FROM patients").fetchone()[0]
    finally:
        con.close()


def _cli(workspace, *args: str) -> subprocess.CompletedProcess:
    """A command in its own process, as an analyst runs it beside the night."""
    command = [sys.executable, "-m", "cohortflow.cli", *args, "--workspace", str(workspace)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def _ask(analyst) -> int:
    analyst.stdin.write("count\n")
    analyst.stdin.flush()
    return int(analyst.stdout.readline())


def test_night_completes_while_an_analyst_holds_the_copy_and_a_pull_gets_the_last_night(
    prefect_harness, keyed, two_nights, monkeypatch
):
    """It runs a night while another process holds ``published/warehouse.duckdb`` open:
    the night completes; a pull and ``status`` in the middle of the night read the
    previous night's snapshot and say so; the analyst's open connection keeps reading
    that snapshot, and the next connection reads the new one."""
    import flows.nightly as nightly_module

    workspace, bring_back_c06 = two_nights
    first = nightly_module.nightly(settings=None, workspace=str(workspace))
    published = workspace / "published" / "warehouse.duckdb"
    before = _patients(published)
    assert before == _patients(workspace / "warehouse.duckdb")

    analyst = subprocess.Popen(
        [sys.executable, "-c", ANALYST, str(published)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    during: dict[str, object] = {}
    real_reevaluate = nightly_module.reevaluate_waiting

    def reevaluate_then_read(*args, **kwargs):
        """Between loading and the views of night 2 (the live file held for writing by
        this process): what readers in other processes get now."""
        out = workspace.parent / "mid-night.parquet"
        during["pull"] = _cli(workspace, "pull", "patients", "--out", str(out))
        during["pull_rows"] = pl.read_parquet(out).height
        during["card"] = json.loads(out.with_name(out.name + ".card.json").read_text())
        during["status"] = _cli(workspace, "status")
        during["analyst"] = _ask(analyst)
        return real_reevaluate(*args, **kwargs)

    monkeypatch.setattr(nightly_module, "reevaluate_waiting", reevaluate_then_read)
    try:
        assert _ask(analyst) == before
        bring_back_c06()
        state = nightly_module.nightly(workspace=str(workspace), return_state=True)
        assert not state.is_failed(), state.message
        second = state.result()
        after_in_open_connection = _ask(analyst)
    finally:
        analyst.stdin.close()
        analyst.wait(timeout=30)

    assert second.data_changed and second.snapshot_id != first.snapshot_id
    pulled, status = during["pull"], during["status"]
    assert pulled.returncode == 0 and status.returncode == 0, pulled.stderr + status.stderr
    assert during["pull_rows"] == before  # the previous night's rows, not the half-loaded
    assert during["card"]["snapshot"]["id"] == first.snapshot_id
    reading = f"Reading the published copy {workspace / 'published' / 'warehouse.duckdb'}: "
    reading += f"snapshot {first.snapshot_id} of run {first.run_id}"
    for said in (pulled.stdout, status.stdout):  # each says which state it read
        assert reading in said and "Running now: `cohortflow run (nightly flow)`" in said
    assert during["analyst"] == before and after_in_open_connection == before
    assert _patients(published) > before  # the next reader sees night 2
    assert _patients(published) == _patients(workspace / "warehouse.duckdb")


def test_crashed_night_leaves_readers_on_the_last_committed_night(
    prefect_harness, keyed, two_nights, monkeypatch, capsys
):
    """A night that fails after loading (views) publishes nothing: a pull afterwards
    returns the previous night's rows with exit 0, never a half-built state."""
    import flows.nightly as nightly_module

    workspace, bring_back_c06 = two_nights
    first = nightly_module.nightly(workspace=str(workspace))
    published = workspace / "published" / "warehouse.duckdb"
    copy_before = published.read_bytes()

    def views_crash(con, snapshot):
        raise RuntimeError("simulated crash while building the views")

    monkeypatch.setattr(nightly_module.refresh_views_task, "fn", views_crash)
    bring_back_c06()
    state = nightly_module.nightly(workspace=str(workspace), return_state=True)
    assert state.is_failed()
    assert published.read_bytes() == copy_before

    out = workspace.parent / "after-crash.parquet"
    capsys.readouterr()
    assert (
        main(["pull", "analysis_patient_months", "--out", str(out), "--workspace", str(workspace)])
        == 0
    )
    card = json.loads(out.with_name(out.name + ".card.json").read_text())
    assert card["snapshot"]["id"] == first.snapshot_id
    assert pl.read_parquet(out).height > 0  # the views of the committed night, whole
    ledger = duckdb.connect(str(workspace / "pulls.duckdb"), read_only=True)
    assert ledger.execute("SELECT snapshot_id FROM pulls").fetchall() == [(first.snapshot_id,)]
    ledger.close()

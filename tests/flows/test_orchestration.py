"""Orchestration: concurrency, isolation of a failing centre, files still being copied,
and the Dask task runner, under Prefect's harness on a small simulated cohort."""

from __future__ import annotations

import os
import shutil
import threading
import time

import duckdb
import pytest

from tests.conftest import TEST_KEY

pytestmark = pytest.mark.e2e


@pytest.fixture
def keyed(monkeypatch):
    monkeypatch.setenv("COHORTFLOW_PSEUDONYM_KEY", TEST_KEY)
    monkeypatch.setenv("COHORTFLOW_SETTLE_SECONDS", "0")


def _snapshot(workspace) -> str:
    from transforms import warehouse

    con = warehouse.connect(workspace / "warehouse.duckdb", read_only=True)
    try:
        return warehouse.snapshot_id(con)
    finally:
        con.close()


def test_nightly_prepares_centres_concurrently(prefect_harness, keyed, workspace, monkeypatch):
    """It runs per-centre tasks at the same time: each waits at a barrier for a second one."""
    import flows.nightly as nightly_module

    barrier = threading.Barrier(2, timeout=30)
    real = nightly_module.prepare_centre

    def meets_another_centre(*args, **kwargs):
        barrier.wait()  # broken (an error) if centres ran one after the other
        return real(*args, **kwargs)

    monkeypatch.setattr(nightly_module, "prepare_centre", meets_another_centre)
    result = nightly_module.nightly(workspace=str(workspace), fit_models=False)
    assert result.failed_centres == {}
    assert len({f.centre_id for f in result.files}) == 6


def test_centres_with_large_code_lists_are_read(prefect_harness, keyed, workspace):
    """Mappings never travel as flow-run parameters: Prefect's API refuses a run whose
    parameters pass 512 KB, and a hundred centres' mappings (or one drug dictionary) do.
    Here three centres each carry a 12,000-entry code list for their treatments."""
    import yaml

    from flows.nightly import nightly

    for centre in ("C01", "C03", "C05"):
        path = workspace / "centres" / f"{centre}.yaml"
        mapping = yaml.safe_load(path.read_text(encoding="utf-8"))
        treatments = mapping["forms"]["treatments"]
        dictionary = {f"X{n:05d}": "other" for n in range(12_000)}  # codes no file uses
        treatments["value_maps"] = {"drugs": dictionary | treatments["codes"]["drug_class"]}
        treatments["codes"]["drug_class"] = "drugs"
        path.write_text(yaml.safe_dump(mapping, allow_unicode=True), encoding="utf-8")
    size = sum(
        len((workspace / "centres" / f"{c}.yaml").read_bytes()) for c in ("C01", "C03", "C05")
    )
    assert size > 600_000  # over the limit together

    result = nightly(workspace=str(workspace), fit_models=False)
    assert result.failed_centres == {} and result.broken_mappings == {}
    loaded = {f.centre_id for f in result.files if f.form == "treatments" and f.status == "loaded"}
    assert {"C01", "C03", "C05"} <= loaded


def test_a_failing_centre_fails_the_run_but_the_others_load(
    prefect_harness, keyed, workspace, monkeypatch
):
    """Invariant 4 for unexpected errors: the flow ends Failed, names the centre, loads the rest."""
    import flows.nightly as nightly_module

    real = nightly_module.prepare_centre

    def c02_breaks(inbox, mapping, known, **kwargs):
        if mapping.centre_id == "C02":
            raise RuntimeError("disk error while reading C02")
        return real(inbox, mapping, known, **kwargs)

    monkeypatch.setattr(nightly_module, "prepare_centre", c02_breaks)
    state = nightly_module.nightly(workspace=str(workspace), fit_models=False, return_state=True)
    assert state.is_failed() and "C02" in state.message
    result = state.result(raise_on_failure=False).night  # a NightFailed carrying the night
    assert "disk error while reading C02" in result.failed_centres["C02"]
    assert {f.centre_id for f in result.files} == {"C01", "C03", "C04", "C05", "C06"}
    con = duckdb.connect(str(workspace / "warehouse.duckdb"), read_only=True)
    assert con.execute("SELECT status, message FROM runs").fetchall()[0][0] == "partial"
    centres = con.execute("SELECT DISTINCT centre_id FROM patients ORDER BY 1").fetchall()
    assert [c for (c,) in centres] == ["C01", "C03", "C04", "C05", "C06"]
    con.close()


def test_a_file_still_being_copied_is_retried_then_loaded(
    prefect_harness, keyed, workspace, monkeypatch
):
    """A file modified a moment ago is waited for (retries with backoff), then loaded."""
    from flows.nightly import nightly

    monkeypatch.setenv("COHORTFLOW_SETTLE_SECONDS", "1")
    now = time.time()
    for path in (workspace / "inbox").rglob("*"):
        if path.is_file():
            os.utime(path, (now - 3600, now - 3600))
    fresh = next((workspace / "inbox" / "C01").iterdir())
    os.utime(fresh, (now, now))  # as if the copy had just finished
    state = nightly(workspace=str(workspace), fit_models=False, return_state=True)
    result = state.result()
    assert result.waiting == {}
    assert fresh.name in {f.file_name for f in result.files if f.status == "loaded"}


def test_a_partial_download_defers_its_centre_to_the_next_night(prefect_harness, keyed, workspace):
    """A '.part' file never settles: the centre waits (a warning), the others load."""
    from flows.nightly import nightly

    folder = workspace / "inbox" / "C02"
    partial = folder / "suivi_C02_next.csv.part"
    partial.write_bytes(b"N\xb0 patient;EN_M0\n")
    state = nightly(workspace=str(workspace), fit_models=False, return_state=True)
    assert state.is_completed() and state.name == "Completed with warnings"
    first = state.result()
    assert first.waiting == {"C02": [partial.name]}
    assert "C02" not in {f.centre_id for f in first.files}

    partial.unlink()  # the copy was abandoned; tomorrow the centre's files load
    second = nightly(workspace=str(workspace), fit_models=False)
    assert second.waiting == {} and {f.centre_id for f in second.files} == {"C02"}


def test_dask_task_runner_gives_the_same_warehouse(
    prefect_harness, keyed, workspace, tmp_path, monkeypatch
):
    """It reads and validates on a local Dask cluster (worker processes) with the same result."""
    from flows.nightly import nightly

    other = tmp_path / "dask-ws"
    shutil.copytree(workspace, other)
    threads = nightly(workspace=str(workspace), fit_models=False)

    monkeypatch.setenv("COHORTFLOW_TASK_RUNNER", "dask")
    monkeypatch.setenv("COHORTFLOW_MAX_WORKERS", "2")
    on_dask = nightly(workspace=str(other), fit_models=False)
    assert on_dask.failed_centres == {}
    assert on_dask.snapshot_id == threads.snapshot_id == _snapshot(other)
    assert len(on_dask.files) == len(threads.files)


def test_failing_quality_checks_fail_the_flow_not_the_load(
    prefect_harness, keyed, workspace, monkeypatch
):
    """The data stays loaded and the run completed; the flow says the checks failed."""
    import flows.quality
    from flows.nightly import NightFailed, nightly

    def broken(*args, **kwargs):
        raise RuntimeError("GX exploded")

    monkeypatch.setattr(flows.quality, "run_quality", broken)
    with pytest.raises(NightFailed, match="data-quality checks failed: RuntimeError: GX exploded"):
        nightly(workspace=str(workspace), fit_models=False)
    con = duckdb.connect(str(workspace / "warehouse.duckdb"), read_only=True)
    assert con.execute("SELECT status FROM runs").fetchall() == [("completed",)]
    assert con.execute("SELECT count(*) FROM patients").fetchall()[0][0] > 0
    con.close()

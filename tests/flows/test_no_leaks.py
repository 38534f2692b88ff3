"""Security: after a real night, the key and the local patient ids appear nowhere.

Not in the warehouse file, reports, query CSVs, artifacts, GX Data Docs, nor in Prefect's
logs, artifacts and task results.
"""

from __future__ import annotations

import json

import duckdb
import polars as pl
import pytest

from cohortflow.settings import Settings
from transforms.staging.pseudonym import patient_key

pytestmark = pytest.mark.e2e

KEY = "leak-canary-key-7d3f9a2b51"


def _local_ids(workspace) -> list[str]:
    latent = pl.read_parquet(workspace / "simulation" / "latent.parquet")
    return latent["patient_id"].to_list()


def _assert_pseudonyms_made_with(key: str, workspace) -> None:
    """The flow pseudonymised with the real key (a masked one would give other keys)."""
    latent = pl.read_parquet(workspace / "simulation" / "latent.parquet")
    expected = {patient_key(key, c, p) for c, p in latent.select("centre_id", "patient_id").rows()}
    with duckdb.connect(str(workspace / "warehouse.duckdb"), read_only=True) as con:
        keys = {k for (k,) in con.execute("SELECT patient_key FROM patients").fetchall()}
    assert keys and keys <= expected


def _outputs(workspace):
    """Every file the pipeline wrote (the inbox and the simulator's truth are inputs)."""
    skip = {"inbox", "simulation", "centres", ".prefect"}
    for path in workspace.rglob("*"):
        if path.is_file() and not skip & set(path.relative_to(workspace).parts):
            yield path


@pytest.mark.parametrize("key_from", ["environment", "settings"])
def test_the_key_and_local_ids_never_leave_the_inbox(
    prefect_harness, workspace, monkeypatch, key_from
):
    """It holds whether the key comes from the environment (a deployment) or from the
    settings the CLI passes in: Prefect stores that flow parameter with the key masked."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        LogFilter,
        LogFilterFlowRunId,
    )

    from flows.nightly import nightly

    monkeypatch.setenv("COHORTFLOW_SETTLE_SECONDS", "0")
    if key_from == "environment":
        monkeypatch.setenv("COHORTFLOW_PSEUDONYM_KEY", KEY)
        state = nightly(workspace=str(workspace), return_state=True)
    else:
        settings = Settings.from_env(workspace).with_key(KEY)
        state = nightly(settings=settings, return_state=True)
    assert state.is_completed()
    _assert_pseudonyms_made_with(KEY, workspace)
    ids = [i.encode() for i in _local_ids(workspace)]
    written = list(_outputs(workspace))
    assert any(p.suffix == ".duckdb" for p in written) and any(
        p.suffix == ".parquet" for p in written
    )
    for path in written:
        content = path.read_bytes()
        assert KEY.encode() not in content, path
        leaked = [i for i in ids if i in content]
        assert not leaked, (path, leaked[:3])

    with get_client(sync_client=True) as client:
        run_id = state.state_details.flow_run_id
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])))
        artifacts = client.read_artifacts()
        task_runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id]))
        )
        parameters = client.read_flow_run(run_id).parameters
    if key_from == "settings":
        assert parameters["settings"]["pseudonym_key"] == "**********"
    text = "\n".join(
        [json.dumps(parameters, default=str)]
        + [log.message for log in logs]
        + [str(a.data) + str(a.description) for a in artifacts]
        + [str(t.state.message) + str(t.state.data) for t in task_runs if t.state]
    )
    assert logs and artifacts
    assert KEY not in text
    assert not [i for i in _local_ids(workspace) if i in text]

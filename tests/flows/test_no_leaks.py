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


def _assert_outbox_holds_own_ids_only(workspace) -> None:
    """Local ids leave the inbox only in their own centre's outbound files (design
    invariant 11): each centre's files name some of its patients and no one else's."""
    latent = pl.read_parquet(workspace / "simulation" / "latent.parquet")
    folders = [p for p in (workspace / "outbox").iterdir() if p.is_dir()]
    assert folders, "the night wrote no outbound file"
    for folder in folders:
        own = set(latent.filter(centre_id=folder.name)["patient_id"])
        others = set(latent["patient_id"]) - own
        for path in folder.iterdir():
            content = path.read_bytes() if path.suffix == ".csv" else _xlsx_text(path)
            assert KEY.encode() not in content
            assert not [i for i in others if i.encode() in content], path
        csv = (folder / f"{folder.name}_queries.csv").read_bytes()
        assert any(i.encode() in csv for i in own), folder  # the ids are there to act on


def _xlsx_text(path) -> bytes:
    """The cells of every sheet of a workbook, as text (an .xlsx is a zip)."""
    sheets = pl.read_excel(path, sheet_id=0)
    return b"".join(frame.write_csv().encode() for frame in sheets.values())


def _outputs(workspace):
    """Every file the pipeline wrote (the inbox and the simulator's truth are inputs),
    but the centres' outbound query files (``_assert_outbox_holds_own_ids_only``)."""
    skip = {"inbox", "simulation", "centres", ".prefect", "outbox"}
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
    _assert_outbox_holds_own_ids_only(workspace)

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

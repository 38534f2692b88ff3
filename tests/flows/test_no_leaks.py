"""Security: after a real night, the key and the local patient ids appear nowhere.

Not in the warehouse file, reports, query CSVs, artifacts, GX Data Docs, nor in Prefect's
logs, artifacts and task results; also when exports are hostile (no header row, the id
column read twice or copied into another column), and no CSV written for people holds a
formula a spreadsheet would run.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

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
            content = _xlsx_text(path) if path.suffix == ".xlsx" else path.read_bytes()
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


PHONES = ("06 12 34 01 01", "06 12 34 02 02")
HYPERLINK = '=HYPERLINK("http://x.test/?q=1","click")'


def _hostile_workspace(workspace) -> None:
    """Exports that used to leak local ids or values, or to carry a formula to a person:
    C01's follow-up without its header row; C02's inclusion without its header row and with
    a phone column; C05's mapping reading the id column as the diagnosis too; C06's
    diagnosis holding the row's own id on three rows, and a formula in an NPRS cell."""
    from tests.robustness import damage as d
    from tests.robustness.test_hostile_inputs import copy_id_to

    inbox = workspace / "inbox"
    d.edit_csv(d.export_of(inbox / "C01", "follow_up"), d.drop_header)
    phone = d.add_column("telephone", lambda i: PHONES[i - 1] if i <= 2 else f"06 12 34 {i:02d} 00")
    d.edit_csv(d.export_of(inbox / "C02", "inclusion"), lambda rows: d.drop_header(phone(rows)))

    def diagnosis_from_id(mapping: dict) -> None:
        columns = mapping["forms"]["inclusion"]["columns"]
        columns["pain_diagnosis"] = columns["patient_id"]

    d.edit_mapping(inbox / "C05", diagnosis_from_id)
    for row in (1, 2, 3):
        d.edit_csv(d.export_of(inbox / "C06", "inclusion"), copy_id_to("Diagnostic", row))
    d.edit_csv(d.export_of(inbox / "C06", "follow_up"), d.set_cell("EN_M3", 2, HYPERLINK))


def _prefect_database() -> bytes:
    """The bytes of the Prefect database the harness runs (SQLite stores text as is)."""
    from prefect.settings import get_current_settings

    url = get_current_settings().server.database.connection_url
    path = str(url.get_secret_value() if hasattr(url, "get_secret_value") else url)
    return Path(path.split("///", 1)[1]).read_bytes()


def _csv_cells(path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as handle:
        return [cell for row in csv.reader(handle) for cell in row]


def test_hostile_exports_leak_no_id_nor_value_and_write_no_formula(prefect_harness, workspace):
    """Headerless files, an id column read twice or copied into a coded column, a formula
    in a value: after the night, no local id and no phone number anywhere the pipeline
    wrote (files, warehouse text, Prefect's logs, artifacts, task states and database),
    and the quarantine and query files hold that formula as text."""
    from flows.nightly import nightly
    from tests.robustness.test_hostile_inputs import warehouse_text

    _hostile_workspace(workspace)
    settings = Settings.from_env(workspace, {"COHORTFLOW_SETTLE_SECONDS": "0"}).with_key(KEY)
    state = nightly(settings=settings, return_state=True)
    assert state.is_completed() and state.name == "Completed with warnings"
    night = state.result()
    errors = {(f.centre_id, f.form): f.error for f in night.files if f.error}
    assert "is the header row missing?" in errors[("C01", "follow_up")]
    assert "column 7 looks like a phone number" in errors[("C02", "inclusion")]
    assert errors[("C05", "inclusion")].startswith("local id read twice")
    secrets = [*_local_ids(workspace), *PHONES]

    with duckdb.connect(str(workspace / "warehouse.duckdb"), read_only=True) as con:
        stored = "\n".join(warehouse_text(con))
        masked = con.execute(
            "SELECT count(*) FROM quarantine WHERE centre_id = 'C06' AND value IS NULL "
            "AND message LIKE '%local patient id (not shown)%'"
        ).fetchone()
    assert masked == (3,)
    assert not [s for s in secrets if s in stored]
    for path in _outputs(workspace):
        content = path.read_bytes()
        assert not [s for s in secrets if s.encode() in content], path

    quarantine = night.quarantine_csv
    assert quarantine is not None and "'" + HYPERLINK in _csv_cells(quarantine)
    people = [quarantine, *(workspace / "reports" / night.run_id / "queries").glob("*.csv")]
    assert len(people) > 1
    for path in people:
        runnable = [c for c in _csv_cells(path) if c[:1] in ("=", "+", "@", "\t", "\r")]
        assert not runnable, (path, runnable[:3])

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        LogFilter,
        LogFilterFlowRunId,
    )

    with get_client(sync_client=True) as client:
        run_id = state.state_details.flow_run_id
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])))
        artifacts = client.read_artifacts()
        task_runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id]))
        )
    text = "\n".join(
        [log.message for log in logs]
        + [str(a.data) + str(a.description) for a in artifacts]
        + [str(t.state.message) + str(t.state.data) for t in task_runs if t.state]
    )
    assert "is the header row missing?" in text  # the rejections did reach Prefect
    assert not [s for s in secrets if s in text]
    database = _prefect_database()
    assert not [s for s in secrets if s.encode() in database]

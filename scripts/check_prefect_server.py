"""Scripted check: a real Prefect server, `cohortflow serve`, scheduled and triggered nights.

Starts `prefect server start` on loopback (its home in a temporary folder) and simulates
a small workspace. First, `cohortflow serve` with a per-minute schedule
(``COHORTFLOW_NIGHTLY_CRON='* * * * *'``): the check waits for a run created by the
server's scheduler to complete (at most 150 s), then stops `serve` with SIGTERM and
expects it gone within 15 s. Then `serve` again on the default schedule: it triggers the
nightly deployment, waits for it to complete, and reads its artifacts through the API;
then a run that fails (a workspace without mappings) and one more nightly, to show that
the served process survives a failed run and keeps running deployments.

    make check-server      (about 2-4 minutes; not part of the test suite)
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BIN = Path(sys.executable).parent
TIMEOUT = 300
EXPECTED_ARTIFACTS = (
    "ingestion-per-centre",
    "ingestion-per-file",
    "models",
    "data-quality-scorecard",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise SystemExit(f"timed out waiting for {url}")


async def run_and_wait(name: str, parameters: dict | None = None):
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    deadline = time.time() + TIMEOUT
    while True:  # the served process registers its deployments shortly after it starts
        try:
            run = await run_deployment(name, parameters=parameters or {}, timeout=0)
            break
        except Exception:
            if time.time() > deadline:
                raise
            await asyncio.sleep(2)
    async with get_client() as client:
        while time.time() < deadline:
            run = await client.read_flow_run(run.id)
            if run.state and run.state.is_final():
                return run
            await asyncio.sleep(2)
    raise SystemExit(f"{name}: run {run.id} did not finish in {TIMEOUT} s")


async def scheduled_run_completed(deployment: str, within: float) -> object | None:
    """The first run the scheduler created for ``deployment`` that completes in time."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    flow_name, name = deployment.split("/")
    deadline = time.time() + within
    async with get_client() as client:
        while time.time() < deadline:
            runs = await client.read_flow_runs(
                deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[name]))
            )
            for run in runs:
                if run.auto_scheduled and run.state and run.state.is_completed():
                    return run
            await asyncio.sleep(3)
    return None


def scheduled_night(workspace: Path, env: dict, log: Path):
    """`serve` with a per-minute schedule: a scheduled night completes, SIGTERM stops it."""
    served = subprocess.Popen(
        [BIN / "cohortflow", "serve", "--workspace", workspace],
        env={**env, "COHORTFLOW_NIGHTLY_CRON": "* * * * *"},
        stdout=open(log, "w"),
        stderr=subprocess.STDOUT,
    )
    try:
        run = asyncio.run(scheduled_run_completed("cohortflow-nightly/nightly", 150))
        print(f"scheduled nightly: {run.name if run else 'none completed within 150 s'}")
    finally:
        served.send_signal(signal.SIGTERM)
        started = time.time()
        try:
            served.wait(timeout=15)
        except subprocess.TimeoutExpired:
            served.kill()
            print("serve did not stop within 15 s of SIGTERM")
            return None
    print(f"serve stopped {time.time() - started:.1f} s after SIGTERM")
    return run


async def artifacts_of(run) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    async with get_client() as client:
        return await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id]))
        )


def main() -> int:
    root = Path(tempfile.mkdtemp(prefix="cohortflow-server-check-"))
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(root / "prefect-home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_API_URL": api,
        "COHORTFLOW_PSEUDONYM_KEY": "server-check-key-simulated-data-only",
        "COHORTFLOW_SETTLE_SECONDS": "0",
    }
    os.environ.update(env)
    workspace, empty = root / "ws", root / "empty"
    (empty / "centres").mkdir(parents=True)
    subprocess.run(
        [
            BIN / "cohortflow",
            "simulate",
            "--workspace",
            workspace,
            "--patients",
            "60",
            "--centres",
            "4",
        ],
        env=env,
        check=True,
    )
    server = subprocess.Popen(
        [BIN / "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    served = None
    try:
        wait_for(f"{api}/health")
        print(f"Prefect server up at {api}")
        scheduled = scheduled_night(workspace, env, root / "serve-scheduled.log")
        scheduled_keys = (
            sorted(a.key for a in asyncio.run(artifacts_of(scheduled)) if a.key)
            if scheduled
            else []
        )
        print(f"scheduled night's artifacts: {', '.join(scheduled_keys)}")
        served = subprocess.Popen(
            [BIN / "cohortflow", "serve", "--workspace", workspace],
            env=env,
            stdout=open(root / "serve.log", "w"),
            stderr=subprocess.STDOUT,
        )
        first = asyncio.run(run_and_wait("cohortflow-nightly/nightly"))
        keys = sorted(a.key for a in asyncio.run(artifacts_of(first)) if a.key)
        print(f"nightly run {first.name}: {first.state.name}; artifacts: {', '.join(keys)}")
        failing = asyncio.run(
            run_and_wait("cohortflow-fit/weekly-refit", {"workspace": str(empty), "force": True})
        )
        print(f"weekly-refit on an empty workspace: {failing.state.name} (expected to fail)")
        second = asyncio.run(run_and_wait("cohortflow-nightly/nightly"))
        print(f"nightly again: {second.state.name} (the served process survived)")
        ok = (
            scheduled is not None
            and set(EXPECTED_ARTIFACTS) <= set(scheduled_keys)  # the first night fits
            and first.state.is_completed()
            and set(EXPECTED_ARTIFACTS) - {"models"} <= set(keys)  # same data: no refit
            and failing.state.is_failed()
            and second.state.is_completed()
            and served.poll() is None
        )
    finally:
        for process in (served, server):
            if process is not None:
                process.terminate()
                process.wait(timeout=30)
    print("server check:", "PASSED" if ok else f"FAILED (serve log: {root / 'serve.log'})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

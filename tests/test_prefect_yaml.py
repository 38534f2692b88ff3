"""prefect.yaml stays loadable: every entrypoint imports and every schedule parses."""

from __future__ import annotations

import importlib
from pathlib import Path

import yaml
from prefect.client.schemas.schedules import CronSchedule

ROOT = Path(__file__).resolve().parents[1]


def test_every_deployment_entrypoint_is_a_flow():
    config = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    assert config["deployments"]
    for deployment in config["deployments"]:
        path, name = deployment["entrypoint"].split(":")
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        flow = getattr(module, name)
        assert hasattr(flow, "serve") and hasattr(flow, "fn"), deployment["name"]
        assert set(deployment.get("parameters", {})) <= set(flow.parameters.properties)
        for schedule in deployment.get("schedules", []):
            CronSchedule(cron=schedule["cron"], timezone=schedule["timezone"])  # raises if bad


def test_prefect_yaml_and_served_schedules_agree():
    """`cohortflow serve` runs the same deployments, at the same times, as prefect.yaml."""
    from cohortflow.settings import DEFAULT_TIMEZONE
    from flows.deployments import SCHEDULES

    config = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    in_yaml = {
        d["name"]: (
            d["entrypoint"],
            d["schedules"][0]["cron"],
            d["schedules"][0]["timezone"],
            d["parameters"],
        )
        for d in config["deployments"]
    }
    served = {s.name: (s.entrypoint, s.cron, DEFAULT_TIMEZONE, s.parameters) for s in SCHEDULES}
    assert in_yaml == served
    assert served["nightly"][1:3] == ("0 2 * * *", "Europe/Paris")


def test_served_deployments_use_the_workspace_and_the_configured_time(tmp_path, monkeypatch):
    from cohortflow.settings import Settings
    from flows.deployments import runner_deployments

    monkeypatch.setenv("COHORTFLOW_NIGHTLY_CRON", "30 1 * * *")
    deployments = {d.name: d for d in runner_deployments(Settings.from_env(tmp_path))}
    assert set(deployments) == {"nightly", "weekly-refit", "morning-quality"}
    nightly = deployments["nightly"]
    assert nightly.parameters == {
        "workspace": str(tmp_path),
        "fit_models": True,
        "check_quality": True,
    }
    schedule = nightly.schedules[0].schedule
    assert (schedule.cron, schedule.timezone) == ("30 1 * * *", "Europe/Paris")

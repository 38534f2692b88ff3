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

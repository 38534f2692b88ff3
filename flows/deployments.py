"""The schedules of cohortflow, for ``cohortflow serve`` (prefect.yaml mirrors them).

Three deployments: the nightly ingestion (which refits when the data changed and checks
data quality), a weekly refit regardless of change, and a data-quality report each
morning (it also flags centres whose exports are late when no file came in the night).
Times are local to ``COHORTFLOW_TIMEZONE`` (default Europe/Paris); the nightly cron can
be moved with ``COHORTFLOW_NIGHTLY_CRON``. A test keeps prefect.yaml and this table in agreement.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from prefect.schedules import Cron

from cohortflow.settings import Settings


@dataclass(frozen=True)
class Schedule:
    name: str
    entrypoint: str  # module:flow, as in prefect.yaml
    cron: str
    description: str
    parameters: dict = field(default_factory=dict)


SCHEDULES = (
    Schedule(
        "nightly",
        "flows/nightly.py:nightly",
        "0 2 * * *",
        "Ingest every centre's new exports, then refit the models if the data changed.",
        {"workspace": None, "fit_models": True, "check_quality": True},
    ),
    Schedule(
        "weekly-refit",
        "flows/fit.py:fit",
        "0 4 * * 0",
        "Refit and publish the models every Sunday, whether or not the data changed.",
        {"workspace": None, "force": True},
    ),
    Schedule(
        "morning-quality",
        "flows/quality.py:quality",
        "30 6 * * *",
        "Run the data-quality checks on the warehouse and write the morning report.",
        {"workspace": None},
    ),
)
DEFAULT_TIMEZONE = "Europe/Paris"


def _flow(entrypoint: str):
    import importlib

    path, name = entrypoint.split(":")
    return getattr(importlib.import_module(path.removesuffix(".py").replace("/", ".")), name)


def runner_deployments(settings: Settings) -> list:
    """The schedules as Prefect deployments served by this process, on ``settings``' workspace."""
    timezone = os.environ.get("COHORTFLOW_TIMEZONE", DEFAULT_TIMEZONE)
    deployments = []
    for schedule in SCHEDULES:
        cron = schedule.cron
        if schedule.name == "nightly":
            cron = os.environ.get("COHORTFLOW_NIGHTLY_CRON", cron)
        parameters = {**schedule.parameters, "workspace": str(settings.workspace)}
        deployments.append(
            _flow(schedule.entrypoint).to_deployment(
                name=schedule.name,
                schedules=[Cron(cron, timezone=timezone)],
                parameters=parameters,
                description=schedule.description,
            )
        )
    return deployments

"""The schedules of cohortflow, for ``cohortflow serve`` (prefect.yaml mirrors them).

Three deployments: the nightly ingestion (which refits when the data changed and checks
data quality), a weekly refit regardless of change, and a data-quality report each
morning (it also flags centres whose exports are late when no file came in the night).
Times are local to ``Settings.timezone`` (``COHORTFLOW_TIMEZONE``, default Europe/Paris);
the nightly cron is ``Settings.nightly_cron`` (``COHORTFLOW_NIGHTLY_CRON``). A test keeps
prefect.yaml and this table in agreement.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from prefect.schedules import Cron

from cohortflow.settings import DEFAULT_NIGHTLY_CRON, Settings


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
        DEFAULT_NIGHTLY_CRON,
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


def _flow(entrypoint: str):
    path, name = entrypoint.split(":")
    return getattr(importlib.import_module(path.removesuffix(".py").replace("/", ".")), name)


def runner_deployments(settings: Settings) -> list:
    """The schedules as Prefect deployments served by this process, on ``settings``' workspace."""
    deployments = []
    for schedule in SCHEDULES:
        cron = settings.nightly_cron if schedule.name == "nightly" else schedule.cron
        parameters = {**schedule.parameters, "workspace": str(settings.workspace)}
        deployments.append(
            _flow(schedule.entrypoint).to_deployment(
                name=schedule.name,
                schedules=[Cron(cron, timezone=settings.timezone)],
                parameters=parameters,
                description=schedule.description,
                paused=False,  # the runner pauses them when serve stops; a restart resumes
            )
        )
    return deployments

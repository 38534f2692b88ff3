"""The task runner of per-centre work, chosen by settings (threads by default, or Dask).

Reading and validating a centre needs no database and no secret, so it can run on
threads of this process or on the workers of a Dask cluster; loading stays in the flow's
process (the warehouse has one writer).
"""

from __future__ import annotations

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from cohortflow.errors import ConfigError
from cohortflow.settings import Settings


def centre_task_runner(settings: Settings) -> TaskRunner:
    """``threads`` | ``dask`` (a local cluster, one worker per core) | a scheduler address."""
    choice = settings.task_runner.strip()
    if choice == "threads":
        return ThreadPoolTaskRunner(max_workers=settings.max_workers)
    if choice == "dask" or choice.startswith(("dask://", "tcp://")):
        try:
            from prefect_dask import DaskTaskRunner
        except ImportError as exc:  # pragma: no cover - prefect-dask is a dependency
            raise ConfigError("COHORTFLOW_TASK_RUNNER=dask needs prefect-dask installed") from exc
        if choice == "dask":
            return DaskTaskRunner(
                cluster_kwargs={
                    "n_workers": settings.max_workers,
                    "threads_per_worker": 1,
                    "dashboard_address": None,
                }
            )
        return DaskTaskRunner(address=choice.replace("dask://", "tcp://", 1))
    raise ConfigError(
        f"COHORTFLOW_TASK_RUNNER={choice!r}: use 'threads', 'dask' or a Dask scheduler "
        "address such as 'tcp://10.0.0.5:8786'"
    )

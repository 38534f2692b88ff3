"""Prefect names a flow run by the cohortflow run id it records (not "noble-shrimp"), so
that Prefect's UI, the logs and the ``runs`` table name a night the same way."""

from __future__ import annotations

import re

from prefect.runtime import flow_run

from transforms import warehouse

RUN_ID = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{6}")


def new_run_name() -> str:
    """A new run id, as the flow run's name (``flow_run_name=new_run_name``)."""
    return warehouse.new_run_id()


def run_name_or_new() -> str:
    """The run id of the flow running now: its Prefect name when that is a run id (a
    deployment run renamed by hand, or a plain call of ``.fn``, gets a new one)."""
    name = flow_run.name
    if isinstance(name, str) and RUN_ID.fullmatch(name):
        return name
    return warehouse.new_run_id()

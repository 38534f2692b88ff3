"""What every analysis of the study gives the suite: its specification and one ``fit``.

An analysis module (``models.primary``, ``interaction``, ``centre``, ``trajectory``,
``mediation``, ``descriptives``) has a ``NAME`` (its step in the manifest's
``fit_seconds``, ``convergence`` and ``failed``), ``specification(options)`` (its entries
in the manifest's specification, written whether or not the fit succeeds) and
``fit(views, options)``, which returns a ``Fitted``: the result, the tables to publish
and what only the fit can say (the engine that ran, counts, whether it converged).
``models.suite`` runs them in turn.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import polars as pl

Views = dict[str, pl.DataFrame]  # analysis views by name (models.suite.MODEL_INPUTS)
Specification = dict[str, dict[str, Any]]  # manifest entries by published model name


@dataclass(frozen=True)
class Options:
    """The run's settings: seeds and replicates trade time for precision (tests lower them)."""

    seed: int
    n_rep: int  # mediation bootstrap replicates
    n_starts: int  # EM starts per number of trajectory groups
    engine: str = "fast"  # mixed models: "fast" or "statsmodels" (models.mixed)


@dataclass
class Fitted:
    """One analysis fitted: its result, its published tables, and the manifest's record."""

    result: Any
    tables: dict[str, pl.DataFrame]
    specification: Specification = field(default_factory=dict)  # added to the static one
    converged: bool | None = None  # None: no iterative fit to speak of


class Analysis(Protocol):
    """The shape of an analysis module."""

    NAME: str

    def specification(self, options: Options) -> Specification: ...

    def fit(self, views: Views, options: Options) -> Fitted: ...

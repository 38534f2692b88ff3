"""The one choice of engine: the fast fits from per-patient sums, or statsmodels MixedLM.

Both fit the same models to the same likelihood and return the same tables; the fast
engine is the default (milliseconds where MixedLM takes minutes), statsmodels is the
reference it is tested against. A fit records which engine produced it
(``GrowthModelFit.engine``), and the manifest publishes that record.
"""

from __future__ import annotations

import pandas as pd

from models.mixed.centre import fit_three_level_fast
from models.mixed.fast import fit_growth_model_fast
from models.mixed.reference import fit_growth_model_statsmodels
from models.mixed.tables import GrowthModelFit

ENGINES = ("fast", "statsmodels")


def check_engine(engine: str) -> None:
    """Raise ValueError unless ``engine`` is one of ``ENGINES``."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, not {engine!r}")


def fit_growth_model(
    data: pd.DataFrame,
    *,
    outcome: str,
    time: str,
    group: str,
    reml: bool = True,
    time_scale: float = 1.0,
    fixed: str | None = None,
    engine: str = "fast",
) -> GrowthModelFit:
    """Fit ``outcome ~ fixed`` (default: ``time``) with a random intercept and slope of
    ``time`` per ``group`` (REML, or ML with ``reml=False``).

    ``time_scale`` divides time before fitting and the results are transformed back
    exactly; in years (12) statsmodels' optimiser converges where it fails in months.
    """
    check_engine(engine)
    fit = fit_growth_model_fast if engine == "fast" else fit_growth_model_statsmodels
    return fit(
        data,
        outcome=outcome,
        time=time,
        group=group,
        reml=reml,
        time_scale=time_scale,
        fixed=fixed,
    )


def fit_three_level_model(
    data: pd.DataFrame,
    *,
    outcome: str,
    time: str,
    group: str,
    cluster: str,
    time_scale: float = 1.0,
    engine: str = "fast",
) -> GrowthModelFit:
    """REML fit of ``outcome ~ time`` with a random intercept per ``cluster`` and, per
    ``group`` within it, an unstructured random intercept and slope of ``time``.

    Only the fast engine fits it: statsmodels cannot nest correlated random effects in a
    cluster (``models.mixed.reference``); lme4 is its reference (tests/data).

    Unlike ``fit_growth_model``, ``data[time]`` comes already divided by ``time_scale``
    (which then only transforms the results back): the centre model's published numbers
    were fitted on time scaled by polars, whose division by a constant multiplies by its
    reciprocal and differs from numpy's in the last bit for some months.
    """
    check_engine(engine)
    if engine != "fast":
        raise ValueError(
            "statsmodels MixedLM cannot fit the centre model (an unstructured patient "
            "intercept and slope within centre); use the fast engine, checked against lme4"
        )
    return fit_three_level_fast(
        data, outcome=outcome, time=time, group=group, cluster=cluster, time_scale=time_scale
    )

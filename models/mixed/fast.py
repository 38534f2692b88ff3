"""The fast engine: a random intercept and slope model fitted from per-patient sums.

Why: statsmodels MixedLM loops over patients in Python at every likelihood evaluation
(about 10 s for 2,000 patients, design.md; hours at a registry's million), while the
nightly cohort grows to tens of thousands. Here one evaluation costs a few numpy passes
over arrays of length n_patients (``models.mixed.sums``), so a fit takes milliseconds.

The log-likelihood (constants included) and the REML/ML choice are statsmodels' and
lme4's own; the fixed effects' SEs and Satterthwaite df follow lme4 and lmerTest
(``models.mixed.inference``). The results are those of
``models.mixed.reference.fit_growth_model_statsmodels`` run to its optimum, and
statsmodels and lme4 (tests/data) stay the references (tests compare).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.mixed.design import DESIGN
from models.mixed.line import LINE
from models.mixed.optimise import fixed_effect_inference, optimise
from models.mixed.sums import DesignSums, design_sums
from models.mixed.tables import (
    GrowthModelFit,
    growth_boundary,
    growth_variances,
    reml_time_offset,
    time_factors,
    wald_table,
)

FAST_ENGINE = (
    "cohortflow fast engine (models.mixed: exact REML/ML likelihood from per-patient sums, "
    "L-BFGS-B then Newton; equal to statsmodels MixedLM at its optimum, tests/models/mixed)"
)


def fit_growth_model_fast(
    data: pd.DataFrame,
    *,
    outcome: str,
    time: str,
    group: str,
    reml: bool = True,
    time_scale: float = 1.0,
    fixed: str | None = None,
) -> GrowthModelFit:
    """Fit ``outcome ~ fixed`` (default ``outcome ~ time``) with a random intercept and
    slope of ``time`` per ``group``, by REML (or ML with ``reml=False``).

    Time is divided by ``time_scale`` for the fit; every term containing time, its SE,
    the slope (co)variances and the REML log-likelihood are transformed back to ``time``
    units (the model as the manifest describes it, as lme4 fits it in those units).
    """
    sums = design_sums(
        data,
        outcome=outcome,
        time=time,
        group=group,
        reml=reml,
        time_scale=time_scale,
        fixed=fixed,
    )
    return fit_sums(sums, time=time, time_scale=time_scale)


def fit_sums(sums: DesignSums, *, time: str, time_scale: float = 1.0) -> GrowthModelFit:
    """The fit from its sums: the line likelihood when X = Z (the primary model: its
    published numbers to the last bit), the general one otherwise."""
    likelihood = LINE if sums.fixed is None else DESIGN
    p, converged = optimise(sums, likelihood)
    back = time_factors(sums.terms, time, time_scale)
    se, df = fixed_effect_inference(p, sums, likelihood)
    beta = p.beta + np.where(np.array(sums.terms) == "Intercept", sums.y_shift, 0.0)
    sigma2 = p.q / sums.df
    boundary = growth_boundary(p.psi, time_scale)
    offset = reml_time_offset(sums.terms, time, time_scale, sums.reml)
    return GrowthModelFit(
        fixed_effects=wald_table(sums.terms, beta * back, se * back, df),
        variance_components=growth_variances(sigma2 * p.psi, sigma2, time_scale, boundary),
        n_observations=sums.n_observations,
        n_groups=sums.n_patients,
        log_likelihood=-0.5 * p.deviance + offset,
        converged=converged,
        engine=FAST_ENGINE,
        singular=bool(boundary),
        boundary=boundary,
    )

"""The fast engine: a random intercept and slope model fitted from per-patient sums.

Why: statsmodels MixedLM loops over patients in Python at every likelihood evaluation
(about 10 s for 2,000 patients, design.md; hours at a registry's million), while the
nightly cohort grows to tens of thousands. Here one evaluation costs a few numpy passes
over arrays of length n_patients (``models.mixed.sums``), so a fit takes milliseconds.

The log-likelihood (constants included), the REML/ML choice and the fixed effects'
standard errors (inverse observed Hessian of the sigma-profiled log-likelihood in
(beta, Psi), as statsmodels' ``bse_fe``) are statsmodels' own: the results are those of
``models.mixed.reference.fit_growth_model_statsmodels`` run to its optimum, and
statsmodels stays the reference (tests compare).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.mixed.design import DESIGN
from models.mixed.line import LINE
from models.mixed.optimise import optimise
from models.mixed.sums import DesignSums, design_sums
from models.mixed.tables import GrowthModelFit, growth_variances, time_factors, wald_table

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

    Time is divided by ``time_scale`` for the fit (so the log-likelihood is that of the
    scaled fit, as statsmodels reports it) and every term containing time, its SE, and the
    slope (co)variances are transformed back to ``time`` units.
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
    k_fe = p.beta.size
    se = np.sqrt(np.diag(np.linalg.inv(-likelihood.hessian(p, sums)))[:k_fe]) * back
    beta = p.beta + np.where(np.array(sums.terms) == "Intercept", sums.y_shift, 0.0)
    sigma2 = p.q / sums.df
    return GrowthModelFit(
        fixed_effects=wald_table(sums.terms, beta * back, se),
        variance_components=growth_variances(sigma2 * p.psi, sigma2, time_scale),
        n_observations=sums.n_observations,
        n_groups=sums.n_patients,
        log_likelihood=-0.5 * p.deviance,
        converged=converged,
        engine=FAST_ENGINE,
    )

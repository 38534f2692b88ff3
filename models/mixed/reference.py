"""The statsmodels engine: MixedLM fits of the same models, the reference the fast engine
is tested against (and the way to check a published number with a standard package).

MixedLM's optimiser often fails on monthly slopes, whose variance is ~1000x smaller than
the intercept's: time is divided by ``time_scale`` (12: years) before fitting (the
three-level fit receives it divided, as ``models.mixed.engine`` says), and the results are
transformed back exactly (every term containing time, its SE x 1/scale per time factor;
slope variance x 1/scale^2; the REML log-likelihood + log|D|, ``tables.reml_time_offset``).

The SEs are lme4's convention (``models.mixed.inference``), read from MixedLM's own
Hessian: the inverse of its fixed-effects block. MixedLM gives no degrees of freedom: the
Satterthwaite df are computed by ``models.mixed.inference`` at MixedLM's estimates.

statsmodels cannot fit the centre model (an unstructured patient intercept and slope
nested in centre: its variance components are independent scalars), so that model has
no statsmodels engine; lme4's fits (tests/data) are its reference.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf

from models.mixed.design import DESIGN
from models.mixed.line import LINE
from models.mixed.optimise import fixed_effect_inference
from models.mixed.sums import DesignSums, design_sums
from models.mixed.tables import (
    GrowthModelFit,
    growth_boundary,
    growth_variances,
    reml_time_offset,
    time_factors,
    wald_table,
)

STATSMODELS_ENGINE = "statsmodels MixedLM (random intercept and slope per patient)"
# Powell then L-BFGS: statsmodels' default (BFGS) often fails with the centre variance on
# its boundary (no centre effect) and retries for ~10 s; this order converges in ~1-2 s.
CENTRE_OPTIMISERS = ["powell", "lbfgs"]


def fit_quietly(model, **fit_kwargs):
    """Fit a MixedLM; converged only if statsmodels says so and warned of no failure."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = model.fit(**fit_kwargs)
    converged = bool(result.converged) and not any(
        "converge" in str(w.message).lower() for w in caught
    )
    return result, converged


def lme4_standard_errors(result) -> np.ndarray:
    """SEs of the fixed effects from the fixed-effects block of MixedLM's Hessian alone
    (``sigma^2 (X'V^-1 X)^-1``, lme4's convention; ``bse_fe`` inverts the whole Hessian)."""
    hess, _ = result.model.hessian(result.params_object)
    k = result.k_fe
    return np.sqrt(np.diag(np.linalg.inv(-hess[:k, :k])))


def satterthwaite_at(result, sums: DesignSums) -> np.ndarray:
    """lmerTest's df at MixedLM's estimates (MixedLM has none of its own)."""
    likelihood = LINE if sums.fixed is None else DESIGN
    p = likelihood.profile(result.cov_re.to_numpy() / float(result.scale), sums)
    return fixed_effect_inference(p, sums, likelihood)[1]


def growth_model_fit(
    result, sums: DesignSums, *, time: str, time_scale: float, converged: bool
) -> GrowthModelFit:
    """A MixedLM result of a random intercept and slope model, in tidy tables (``sums``:
    the same model's per-patient sums, for the df)."""
    terms = [str(t) for t in result.fe_params.index]
    back = time_factors(terms, time, time_scale)
    psi = result.cov_re.to_numpy() / float(result.scale)
    boundary = growth_boundary(psi, time_scale)
    se = lme4_standard_errors(result)
    df = satterthwaite_at(result, sums)
    fixed = wald_table(terms, result.fe_params.to_numpy() * back, se * back, df)
    offset = reml_time_offset(terms, time, time_scale, bool(result.model.reml))
    return GrowthModelFit(
        fixed_effects=fixed,
        variance_components=growth_variances(
            result.cov_re.to_numpy(), float(result.scale), time_scale, boundary
        ),
        n_observations=int(result.nobs),
        n_groups=len(result.random_effects),
        log_likelihood=float(result.llf) + offset,
        converged=converged,
        engine=STATSMODELS_ENGINE,
        singular=bool(boundary),
        boundary=boundary,
    )


def fit_growth_model_statsmodels(
    data: pd.DataFrame,
    *,
    outcome: str,
    time: str,
    group: str,
    reml: bool = True,
    time_scale: float = 1.0,
    fixed: str | None = None,
) -> GrowthModelFit:
    """``outcome ~ fixed`` (default: ``time``; e.g. ``"month * depressed"``) with a random
    intercept and slope of ``time`` per ``group``: MixedLM with its default optimiser."""
    data = data.assign(**{time: data[time] / time_scale})
    model = smf.mixedlm(
        f"{outcome} ~ {fixed or time}", data, groups=data[group], re_formula=f"~{time}"
    )
    result, converged = fit_quietly(model, reml=reml)
    sums = design_sums(
        data, outcome=outcome, time=time, group=group, reml=reml, fixed=fixed
    )  # data[time] is already scaled
    return growth_model_fit(result, sums, time=time, time_scale=time_scale, converged=converged)


def three_level_model(data: pd.DataFrame, *, outcome: str, time: str, group: str, cluster: str):
    """MixedLM of the centre model with an independent patient intercept and slope (the
    most statsmodels can nest in centre; ``data[time]`` scaled): at a diagonal Psi its
    likelihood is the fast centre profile's reference (tests/models/mixed)."""
    frame = data[[outcome, time, group, cluster]].dropna()
    vc_formula = {"patient": f"0 + C({group})", "patient_slope": f"0 + C({group}):{time}"}
    return smf.mixedlm(
        f"{outcome} ~ {time}", frame, groups=cluster, re_formula="1", vc_formula=vc_formula
    )

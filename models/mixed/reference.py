"""The statsmodels engine: MixedLM fits of the same models, the reference the fast engine
is tested against (and the way to check a published number with a standard package).

MixedLM's optimiser often fails on monthly slopes, whose variance is ~1000x smaller than
the intercept's: time is divided by ``time_scale`` (12: years) before fitting (the
three-level fit receives it divided, as ``models.mixed.engine`` says), and the results are
transformed back exactly (every term containing time, its SE x 1/scale per time factor;
slope variance x 1/scale^2).
"""

from __future__ import annotations

import warnings

import pandas as pd
import statsmodels.formula.api as smf

from models.mixed.tables import (
    CENTRE_COMPONENTS,
    GrowthModelFit,
    growth_variances,
    time_factors,
    variance_table,
    wald_table,
)

STATSMODELS_ENGINE = "statsmodels MixedLM (random intercept and slope per patient)"
STATSMODELS_CENTRE_ENGINE = (
    "statsmodels MixedLM (groups = centre; patient intercept and slope as variance "
    "components, vc_formula)"
)
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


def fixed_effects_table(result, *, time: str = "", time_scale: float = 1.0):
    """A MixedLM result's fixed effects as ``wald_table``, time terms in ``time`` units."""
    terms = [str(t) for t in result.fe_params.index]
    back = time_factors(terms, time, time_scale)
    return wald_table(terms, result.fe_params.to_numpy() * back, result.bse_fe.to_numpy() * back)


def growth_model_fit(result, *, time: str, time_scale: float, converged: bool) -> GrowthModelFit:
    """A MixedLM result of a random intercept and slope model, in tidy tables."""
    return GrowthModelFit(
        fixed_effects=fixed_effects_table(result, time=time, time_scale=time_scale),
        variance_components=growth_variances(
            result.cov_re.to_numpy(), float(result.scale), time_scale
        ),
        n_observations=int(result.nobs),
        n_groups=len(result.random_effects),
        log_likelihood=float(result.llf),
        converged=converged,
        engine=STATSMODELS_ENGINE,
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
    return growth_model_fit(result, time=time, time_scale=time_scale, converged=converged)


def three_level_model(data: pd.DataFrame, *, outcome: str, time: str, group: str, cluster: str):
    """The MixedLM of ``models.mixed.centre``'s model on its rows (``data[time]`` scaled)."""
    frame = data[[outcome, time, group, cluster]].dropna()
    vc_formula = {"patient": f"0 + C({group})", "patient_slope": f"0 + C({group}):{time}"}
    return smf.mixedlm(
        f"{outcome} ~ {time}", frame, groups=cluster, re_formula="1", vc_formula=vc_formula
    )


def fit_three_level_statsmodels(
    data: pd.DataFrame, *, outcome: str, time: str, group: str, cluster: str, time_scale: float
) -> GrowthModelFit:
    """``models.mixed.centre``'s model by MixedLM, patients as variance components
    (``data[time]`` already divided by ``time_scale``, as the fast fit)."""
    model = three_level_model(data, outcome=outcome, time=time, group=group, cluster=cluster)
    result, converged = fit_quietly(model, reml=True, method=CENTRE_OPTIMISERS)
    vcomp = dict(zip(result.model.exog_vc.names, result.vcomp, strict=True))
    values = [
        float(result.cov_re.iloc[0, 0]),
        vcomp["patient"],
        vcomp["patient_slope"] / time_scale**2,
        float(result.scale),
    ]
    return GrowthModelFit(
        fixed_effects=fixed_effects_table(result, time=time, time_scale=time_scale),
        variance_components=variance_table(dict(zip(CENTRE_COMPONENTS, values, strict=True))),
        n_observations=int(result.nobs),
        n_groups=int(model.data.frame[group].nunique()),
        log_likelihood=float(result.llf),
        converged=converged,
        engine=STATSMODELS_CENTRE_ENGINE,
    )

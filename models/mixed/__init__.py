"""The one mixed-model engine: random intercept and slope models of pain over time.

The study fits three: the primary model (``nprs ~ month``), the interaction model (any
fixed part, REML and ML) and the centre model (a centre level above patients). Each is
fitted either by the fast engine, from per-patient sums in milliseconds, or by
statsmodels MixedLM, the reference (``engine.py`` chooses). Inside, by layer:

- ``engine``: the choice of engine; ``fast`` (two-level fits), ``centre`` (the
  three-level fit), ``reference`` (statsmodels);
- ``optimise``: L-BFGS-B then Newton, for either likelihood;
- ``line`` (fixed part = random part: the primary model) and ``design`` (any fixed part):
  the likelihood, its gradient and Hessian;
- ``likelihood``, ``sums``, ``tables``: what they share (the profile, the per-patient
  sums, the t and variance-components tables);
- ``inference``: lme4's SE convention, lmerTest's Satterthwaite df, lme4's singular rule.
"""

from models.mixed.engine import ENGINES, check_engine, fit_growth_model, fit_three_level_model
from models.mixed.inference import SE_CONVENTION
from models.mixed.tables import GrowthModelFit

__all__ = [
    "ENGINES",
    "SE_CONVENTION",
    "GrowthModelFit",
    "check_engine",
    "fit_growth_model",
    "fit_three_level_model",
]

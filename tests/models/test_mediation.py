"""Mediation: statsmodels' bootstrap against the product of coefficients, a known truth."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import statsmodels.formula.api as smf
from statsmodels.stats.mediation import Mediation

from models.mediation import (
    DOSE_UNIT_MG,
    MEDIATOR_FORMULA,
    OUTCOME_FORMULA,
    bootstrap_effects,
    correlation,
    fit_mediation,
    mediation_data,
)

A_PATH = 0.5  # HADS-D points per 100 mg
B_PATH = -0.2  # NPRS change per HADS-D point
DIRECT = -0.1  # NPRS change per 100 mg, not through HADS-D


def _patients(n: int = 400, seed: int = 0) -> pl.DataFrame:
    """Patients with a known mediated path; a tenth miss the one-year NPRS."""
    rng = np.random.default_rng(seed)
    dose = rng.gamma(3.0, 150.0, n)
    age = rng.normal(51, 11, n)
    sex = rng.choice(["F", "M"], n, p=[0.75, 0.25])
    hads_d = 6 + A_PATH * dose / DOSE_UNIT_MG + 0.02 * (age - 51) + rng.normal(0, 3, n)
    change = -1 + B_PATH * hads_d + DIRECT * dose / DOSE_UNIT_MG + rng.normal(0, 1.5, n)
    change[rng.random(n) < 0.1] = np.nan
    return pl.DataFrame(
        {
            "patient_key": [f"p{i}" for i in range(n)],
            "nprs_change": change,
            "total_dose_mg": dose,
            "hads_d_baseline": hads_d,
            "age": age,
            "sex": sex,
        }
    ).with_columns(pl.col("nprs_change").fill_nan(None))


@pytest.fixture(scope="module")
def known():
    patients = _patients()
    return patients, fit_mediation(patients, seed=3, n_rep=200)


def test_fit_mediation_matches_the_product_of_coefficients(known):
    """For linear models ACME = a * b and ADE = c' (OLS fits on the same rows)."""
    patients, result = known
    frame = mediation_data(patients).to_pandas()
    a = smf.ols(MEDIATOR_FORMULA, frame).fit().params["dose"]
    outcome = smf.ols(OUTCOME_FORMULA, frame).fit().params
    effects = dict(result.effects.select("effect", "estimate").iter_rows())
    assert effects["indirect_acme"] == pytest.approx(a * outcome["hads_d_baseline"], abs=0.02)
    assert effects["direct_ade"] == pytest.approx(outcome["dose"], abs=0.02)
    assert effects["total"] == pytest.approx(effects["indirect_acme"] + effects["direct_ade"])


def test_fit_mediation_recovers_the_known_effects_and_excludes_missing_outcomes(known):
    patients, result = known
    rows = {r["effect"]: r for r in result.effects.iter_rows(named=True)}
    for effect, truth in (
        ("indirect_acme", A_PATH * B_PATH),
        ("direct_ade", DIRECT),
        ("total", A_PATH * B_PATH + DIRECT),
    ):
        assert rows[effect]["ci_low"] < truth < rows[effect]["ci_high"]
    expected = A_PATH * B_PATH / (A_PATH * B_PATH + DIRECT)
    assert rows["proportion_mediated"]["estimate"] == pytest.approx(expected, abs=0.15)
    n_complete = patients["nprs_change"].is_not_null().sum()
    assert result.n_patients == n_complete == rows["total"]["n"]
    assert result.n_excluded == patients.height - n_complete
    paths = result.paths.filter(term="dose")
    assert paths["model"].to_list() == ["outcome", "mediator"]


def test_fit_mediation_is_reproducible_with_a_seed():
    patients = _patients(120, seed=1)
    a = fit_mediation(patients, seed=9, n_rep=20).effects
    b = fit_mediation(patients, seed=9, n_rep=20).effects
    c = fit_mediation(patients, seed=10, n_rep=20).effects
    assert a.equals(b) and not a.equals(c)


def test_correlation_is_pearson_on_complete_pairs():
    patients = _patients(50, seed=2)
    r, p, n = correlation(patients, "total_dose_mg", "nprs_change")
    pair = patients.drop_nulls("nprs_change")
    assert r == pytest.approx(np.corrcoef(pair["total_dose_mg"], pair["nprs_change"])[0, 1])
    assert n == pair.height and 0 <= p <= 1


def test_bootstrap_effects_equal_statsmodels_formula_route():
    """Our replicate loop (averages only, no per-patient arrays) reproduces Mediation
    fitted on the formula models, draw for draw."""
    frame = mediation_data(_patients(100, seed=4)).to_pandas()
    outcome = smf.ols(OUTCOME_FORMULA, frame)
    mediator = smf.ols(MEDIATOR_FORMULA, frame)
    reference = Mediation(outcome, mediator, "dose", "hads_d_baseline").fit(
        method="bootstrap", n_rep=20, rng=5
    )
    ours = bootstrap_effects(outcome, mediator, seed=5, n_rep=20)
    expected = reference.summary().loc[ours.index]
    assert ours.to_numpy() == pytest.approx(expected.to_numpy(), rel=1e-9)

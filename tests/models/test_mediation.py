"""Mediation by the product of coefficients: a known truth, scipy's BCa, lavaan's fit."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest
import statsmodels.formula.api as smf
from scipy import stats

from models.analysis import Options
from models.mediation import (
    DOSE_UNIT_MG,
    MEDIATOR_FORMULA,
    NOT_ESTIMABLE,
    OUTCOME_FORMULA,
    bca_interval,
    bootstrap_paths,
    correlation,
    design,
    effects_of,
    fit,
    fit_mediation,
    jackknife_paths,
    mediation_data,
    paths_from_gram,
)
from tests.conftest import TEST_DATA

A_PATH = 0.5  # HADS-D points per 100 mg
B_PATH = -0.2  # NPRS change per HADS-D point
DIRECT = -0.1  # NPRS change per 100 mg, not through HADS-D


def _patients(n: int = 400, seed: int = 0, a: float = A_PATH, direct: float = DIRECT):
    """Patients with a known mediated path; a tenth miss the one-year NPRS, a few the
    baseline HADS-D."""
    rng = np.random.default_rng(seed)
    dose = rng.gamma(3.0, 150.0, n)
    age = rng.normal(51, 11, n)
    sex = rng.choice(["F", "M"], n, p=[0.75, 0.25])
    hads_d = 6 + a * dose / DOSE_UNIT_MG + 0.02 * (age - 51) + rng.normal(0, 3, n)
    change = -1 + B_PATH * hads_d + direct * dose / DOSE_UNIT_MG + rng.normal(0, 1.5, n)
    one_year = np.where(rng.random(n) < 0.1, np.nan, 6.0 + change)
    hads_d[rng.random(n) < 0.02] = np.nan
    return pl.DataFrame(
        {
            "patient_key": [f"p{i}" for i in range(n)],
            "nprs_baseline": np.full(n, 6.0),
            "nprs_one_year": one_year,
            "nprs_change": one_year - 6.0,
            "total_dose_mg": dose,
            "hads_d_baseline": hads_d,
            "age": age,
            "sex": sex,
        }
    ).with_columns(pl.col(pl.Float64).fill_nan(None))


@pytest.fixture(scope="module")
def known():
    patients = _patients()
    return patients, fit_mediation(patients, seed=3, n_rep=400)


def _rows(result) -> dict[str, dict]:
    return {r["effect"]: r for r in result.effects.iter_rows(named=True)}


def test_fit_mediation_estimates_are_the_sample_products_of_coefficients(known):
    """Indirect = a * b, direct = c', total = the dose coefficient of the model without
    the mediator (OLS on the same patients): sample values, not bootstrap means."""
    patients, result = known
    frame = mediation_data(patients).to_pandas()
    a = smf.ols(MEDIATOR_FORMULA, frame).fit().params["dose"]
    outcome = smf.ols(OUTCOME_FORMULA, frame).fit().params
    total = smf.ols("nprs_change ~ dose + age + sex", frame).fit().params["dose"]
    rows = _rows(result)
    assert rows["indirect_acme"]["estimate"] == pytest.approx(a * outcome["hads_d_baseline"])
    assert rows["direct_ade"]["estimate"] == pytest.approx(outcome["dose"])
    assert rows["total"]["estimate"] == pytest.approx(total, rel=1e-10)
    expected = a * outcome["hads_d_baseline"] / total
    assert rows["proportion_mediated"]["estimate"] == pytest.approx(expected)
    assert rows["proportion_mediated"]["status"] == "estimated"


def test_fit_mediation_cis_cover_the_truth_and_counts_exclusions(known):
    patients, result = known
    rows = _rows(result)
    truth = {"indirect_acme": A_PATH * B_PATH, "direct_ade": DIRECT}
    truth["total"] = truth["indirect_acme"] + DIRECT
    for effect, value in truth.items():
        row = rows[effect]
        assert row["ci_low"] < value < row["ci_high"]
        assert row["bca_low"] < value < row["bca_high"]
        assert row["ci_low"] < row["estimate"] < row["ci_high"]
    complete = mediation_data(patients).height
    assert result.n_patients == complete == rows["total"]["n"]
    sample = dict(result.sample.iter_rows())
    assert sample["analysed"] == complete and sum(sample.values()) == patients.height
    no_outcome = patients["nprs_one_year"].is_null().sum()
    assert sample["no month-12 NPRS (dropped out or missed the call)"] == no_outcome > 20
    assert sample["no baseline HADS-D score"] > 0 and sample["age or sex missing"] == 0


def test_bootstrap_sd_of_the_indirect_effect_is_the_delta_method_one(known):
    """Resampling patients keeps the paths' joint distribution: the bootstrap SE is the
    first-order (Sobel) SE, not twice it as with independent draws."""
    patients, result = known
    frame = mediation_data(patients).to_pandas()
    med, out = smf.ols(MEDIATOR_FORMULA, frame).fit(), smf.ols(OUTCOME_FORMULA, frame).fit()
    a, b = med.params["dose"], out.params["hads_d_baseline"]
    sobel = np.hypot(a * out.bse["hads_d_baseline"], b * med.bse["dose"])
    assert _rows(result)["indirect_acme"]["std_error"] == pytest.approx(sobel, rel=0.15)


def test_proportion_mediated_is_not_estimable_when_the_total_ci_holds_zero():
    """No mediated path and no direct effect: the total's CI includes 0, so the
    proportion is null with its reason, never a number."""
    result = fit_mediation(_patients(300, seed=5, a=0.0, direct=0.0), seed=1, n_rep=200)
    rows = _rows(result)
    assert rows["total"]["ci_low"] < 0 < rows["total"]["ci_high"]
    proportion = rows["proportion_mediated"]
    assert proportion["status"] == NOT_ESTIMABLE
    assert proportion["estimate"] is None and proportion["ci_low"] is None
    assert rows["total"]["status"] == "estimated" and rows["total"]["estimate"] is not None


def test_bca_interval_equals_scipy_bootstrap_on_the_same_replicates():
    """Given the same replicates, our BCa (exact OLS jackknife) equals scipy's (its
    jackknife refits the statistic n times)."""
    data = mediation_data(_patients(60, seed=2))
    z = design(data)
    replicates, _ = bootstrap_paths(z, seed=4, n_rep=300)
    ours_jack = jackknife_paths(z)

    def indirect(*columns, axis=-1):
        sub = np.stack(columns, axis=-1)  # (..., n, 6): a resample (or jackknife) batch
        grams = np.einsum("...ni,...nj->...ij", sub, sub).reshape(-1, 6, 6)
        values = [effects_of(paths_from_gram(g))[0] for g in grams]
        return np.reshape(values, sub.shape[:-2])

    estimate = effects_of(paths_from_gram(z.T @ z))[0]
    previous = SimpleNamespace(bootstrap_distribution=effects_of(replicates)[:, 0])
    reference = stats.bootstrap(
        tuple(z.T),
        indirect,
        paired=True,
        vectorized=True,
        n_resamples=0,
        method="BCa",
        bootstrap_result=previous,
    ).confidence_interval
    ours = bca_interval(effects_of(replicates)[:, 0], estimate, effects_of(ours_jack)[:, 0])
    assert ours == pytest.approx([reference.low, reference.high], rel=1e-9)


def test_jackknife_paths_equal_refits_without_each_patient():
    z = design(mediation_data(_patients(40, seed=6)))
    jack = jackknife_paths(z)
    for i in (0, 17, len(z) - 1):
        rest = np.delete(z, i, axis=0)
        assert jack[i] == pytest.approx(paths_from_gram(rest.T @ rest), rel=1e-9)


def test_fit_mediation_is_reproducible_with_a_seed():
    patients = _patients(120, seed=1)
    a = fit_mediation(patients, seed=9, n_rep=20).effects
    b = fit_mediation(patients, seed=9, n_rep=20).effects
    c = fit_mediation(patients, seed=10, n_rep=20).effects
    assert a.equals(b) and not a.equals(c)


def test_fit_refuses_a_rank_deficient_design_and_records_the_sample():
    patients = _patients(80, seed=3).with_columns(sex=pl.lit("F"))
    with pytest.raises(ValueError, match="rank-deficient"):
        fit_mediation(patients, seed=1, n_rep=5)
    five = _patients(80, seed=3).filter(pl.col("nprs_one_year").is_not_null()).head(5)
    with pytest.raises(ValueError, match="5 complete cases .* not estimable"):
        fit_mediation(five, seed=1, n_rep=5)  # as many cases as coefficients: no SE
    fitted = fit({"analysis_patients": _patients(80, seed=3)}, Options(1, 10, 1))
    assert set(fitted.tables) == {"mediation_effects", "mediation_paths", "mediation_sample"}
    record = fitted.specification["mediation"]
    assert record["n_used"] == fitted.result.n_patients
    assert record["n_used"] + sum(record["excluded"].values()) == 80


def test_correlation_is_pearson_on_complete_pairs():
    patients = _patients(50, seed=2)
    r, p, n = correlation(patients, "total_dose_mg", "nprs_change")
    pair = patients.drop_nulls("nprs_change")
    assert r == pytest.approx(np.corrcoef(pair["total_dose_mg"], pair["nprs_change"])[0, 1])
    assert n == pair.height and 0 <= p <= 1


@pytest.fixture(scope="module")
def lavaan():
    """lavaan's sem() of the same two models on a simulated cohort (scripts/r)."""
    reference = json.loads((TEST_DATA / "r_reference_mediation.json").read_text())
    patients = pl.read_csv(TEST_DATA / "mediation_cohort.csv")
    return reference, patients


def test_point_estimates_equal_lavaan(lavaan):
    reference, patients = lavaan
    rows = _rows(fit_mediation(patients, seed=1, n_rep=50))
    for effect, key in (("indirect_acme", "indirect"), ("direct_ade", "direct")):
        assert rows[effect]["estimate"] == pytest.approx(reference[key]["est"], rel=1e-6)
    assert rows["total"]["estimate"] == pytest.approx(reference["total"]["est"], rel=1e-6)


def test_bootstrap_ci_width_matches_lavaan_bootstrap(lavaan):
    """lavaan's patient bootstrap (2,000 draws, percentile) and ours agree on the
    indirect effect's spread within Monte Carlo error (statsmodels' was 2.2x wider)."""
    reference, patients = lavaan
    row = _rows(fit_mediation(patients, seed=1, n_rep=2000))["indirect_acme"]
    assert row["std_error"] == pytest.approx(reference["indirect"]["boot_se"], rel=0.1)
    width = row["ci_high"] - row["ci_low"]
    lavaan_ci = reference["indirect"]["boot_ci_percentile"]
    assert width == pytest.approx(lavaan_ci[1] - lavaan_ci[0], rel=0.15)


def test_bootstrap_resamples_without_one_sex_are_solved_by_least_squares_silently():
    """In a small cohort with one man, a third of the resamples have no man: their Gram
    matrix is singular up to rounding, which scipy only warns about (and returns noise).
    Each such resample is counted deficient and solved by least squares, warning-free."""
    import warnings

    from models.mediation import _least_squares_paths

    patients = _patients(60, seed=4).with_columns(
        sex=pl.when(pl.int_range(pl.len()) == 0).then(pl.lit("M")).otherwise(pl.lit("F"))
    )
    z = design(mediation_data(patients))
    man = int(np.flatnonzero(z[:, 3] > 0)[0])
    rng, n = np.random.default_rng(5), len(z)
    draws = [np.bincount(rng.integers(0, n, n), minlength=n).astype(float) for _ in range(60)]
    without_him = [r for r, counts in enumerate(draws) if counts[man] == 0]
    assert 5 < len(without_him) < 55  # the case arises, and not always
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning left for a person to read
        paths, deficient = bootstrap_paths(z, seed=5, n_rep=60)
    assert deficient == len(without_him)
    for r in without_him:
        np.testing.assert_allclose(paths[r], _least_squares_paths(z, draws[r]))
    assert np.isfinite(paths).all() and np.abs(paths).max() < 100  # no 1e15 noise

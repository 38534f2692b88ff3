"""Simulate the ketamine cohort's canonical data, with the true parameters recorded.

The generative model (all choices are ours; study.md gives only the published figures):

* each patient belongs to one latent pain-trajectory group (mild / moderate / severe,
  shares from the companion paper) with its own mean intercept and monthly slope;
* on top of the group, a per-patient random intercept and slope (correlated), and
  patients without depressive symptoms at baseline (HADS-D <= 7) decline faster;
* NPRS_ij = round(intercept_i + slope_i * month + e_ij), clipped to 0..10;
* calls are missed at random, and patients drop out with a constant monthly hazard
  (about a third still answer at month 12).

The population-average monthly slope (what the primary mixed model estimates) is
``expected_slope`` in the recorded truth.

Calibration (docs/simulator.md; ``simulator.calibration`` prints each published figure
beside the estimate and the truth): the within-group slope SD (0.03) and residual SD
(0.8) give the time x depression interaction the paper's precision (SE 0.0128 at 329
patients, the power behind its p = .002); HADS-D's spread (SD 5) puts mediation path b
at 0.04, the edge of the paper's CI (the interaction's 0.04/month fixes it: see the doc);
the SF-12 latent means, SDs, gains and item noise (90 % of its variance, 80 % of that
stable per patient) reproduce MCS 39.7 (10.9) -> 42.2 and PCS 28.5 (7.9) -> 29.5.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import cast

import numpy as np
import polars as pl

from schemas.forms import PAIN_DIAGNOSES


@dataclass(frozen=True)
class TrajectoryGroup:
    """One latent pain trajectory: its share of patients and its mean course (a line).

    Patients of a group vary around its course by a random intercept and slope whose
    law is the same in every group (``SimulationParameters.intercept_sd``, ``slope_sd``,
    ``intercept_slope_corr``): what a growth mixture model assumes.
    """

    name: str
    share: float
    intercept: float  # mean NPRS at month 0
    slope: float  # mean change in NPRS per month


# The companion paper's three trajectories (Pain 2022): 16.0 % mild, 35.3 % moderate,
# 45.7 % severe; its shares add up to 97.0 %, so they are rescaled to 100 % here. The
# paper gives only names and shares: the courses are a design choice (docs/trajectories.md),
# made so that (1) the cohort's NPRS is near the published 6.8 (SD 1.8) at baseline and
# 5.7 at one year, with the mean monthly slope of the previous design, and (2) the groups
# stand apart from the within-group spread (random intercept SD 0.5) enough for a growth
# mixture model to recover them: at 2,000 patients it picks 3 groups in 10 of 10 seeds,
# adjusted Rand index 0.77-0.82 (bench/trajectory.py). With an intercept SD of 1.0 the
# groups overlapped so much that 2 groups fitted best and no method could recover 3
# (adjusted Rand index 0.3-0.4 for the 3-group fit).
DEFAULT_GROUPS = (
    TrajectoryGroup("mild", 0.165, 4.0, -0.14),
    TrajectoryGroup("moderate", 0.364, 6.3, -0.075),
    TrajectoryGroup("severe", 0.471, 8.15, -0.03),
)

AE_PROBABILITIES = {
    "dissociation": 0.3,
    "dizziness": 0.25,
    "nausea": 0.2,
    "hallucination": 0.1,
    "hypertension": 0.05,
    "headache": 0.1,
}
TREATMENT_PREVALENCE = {
    "opioids": 0.45,
    "antidepressants": 0.5,
    "antiepileptics": 0.45,
    "benzodiazepines": 0.25,
    "nsaids": 0.3,
}
SF12_ITEMS = {  # item: (min, max, loads on physical, loads on mental)
    "gh1": (1, 5, 1.0, 0.3),
    "pf02": (1, 3, 1.0, 0.0),
    "pf04": (1, 3, 1.0, 0.0),
    "rp2": (1, 2, 1.0, 0.2),
    "rp3": (1, 2, 1.0, 0.2),
    "re2": (1, 2, 0.1, 1.0),
    "re3": (1, 2, 0.1, 1.0),
    "bp2": (1, 5, 1.0, 0.2),
    "mh3": (1, 6, 0.1, 1.0),
    "vt2": (1, 6, 0.5, 0.6),
    "mh4": (1, 6, 0.0, 1.0),
    "sf2": (1, 5, 0.4, 0.8),
}
# Items where a higher raw answer means better health (others: higher = worse), as the
# scoring's recodes say (transforms/derived/reference): mh3 (calm) and vt2 (energy) are
# "all of the time" = 1 = best, mh4 (downhearted) "none of the time" = 6 = best.
SF12_HIGHER_IS_BETTER = {"pf02", "pf04", "rp2", "rp3", "re2", "re3", "mh4", "sf2"}


@dataclass(frozen=True)
class SimulationParameters:
    """Everything the simulation draws from; recorded with its output as the truth."""

    n_patients: int = 329
    n_centres: int = 30
    seed: int = 20230516
    first_inclusion: dt.date = dt.date(2016, 7, 7)
    inclusion_window_days: int = 76  # last call then falls near 2017-09-21
    female_share: float = 0.757
    age_mean: float = 51.4
    age_sd: float = 11.0
    groups: tuple[TrajectoryGroup, ...] = DEFAULT_GROUPS
    intercept_sd: float = 0.5  # within a trajectory group (DEFAULT_GROUPS says why 0.5)
    slope_sd: float = 0.03
    intercept_slope_corr: float = -0.2
    residual_sd: float = 0.8
    no_depression_extra_slope: float = -0.04  # steeper decline without depressive symptoms
    hads_d_mean: float = 8.5
    hads_a_mean: float = 10.0
    hads_sd: float = 5.0
    monthly_dropout: float = 0.085
    missed_call_rate: float = 0.08
    adverse_event_rate: float = 0.2  # per procedure, within the week after it
    # SF-12: latent physical and mental health (standard-normal scale), their gain at
    # one year, per-patient change noise and per-item answer noise (docs/simulator.md)
    physical_mean: float = -0.68
    physical_sd: float = 0.44
    mental_mean: float = 0.35
    mental_sd: float = 0.42
    depression_mental_shift: float = 0.4  # lower mental health with depressive symptoms
    physical_mental_corr: float = 0.07
    physical_gain: float = 0.08
    mental_gain: float = 0.185
    sf12_change_sd: float = 0.3
    sf12_item_noise: float = 0.96
    sf12_item_persistence: float = 0.8  # share of the item noise's variance kept at one year
    centre_size_spread: float = 0.8  # SD of log centre weights: unequal centre sizes
    extra: dict = field(default_factory=dict)


@dataclass
class SimulatedCohort:
    """Canonical frames (local ids, not pseudonyms) and the truth that produced them."""

    parameters: SimulationParameters
    centres: pl.DataFrame
    patients: pl.DataFrame
    follow_ups: pl.DataFrame
    hads: pl.DataFrame
    sf12: pl.DataFrame
    ketamine: pl.DataFrame
    adverse_events: pl.DataFrame
    treatments: pl.DataFrame
    latent: pl.DataFrame  # per patient: group, true intercept and slope, dropout month

    def as_tables(self) -> dict[str, pl.DataFrame]:
        """The frames as the warehouse's tables (the local id standing as patient_key)."""
        key = {"patient_id": "patient_key"}
        ketamine = self.ketamine.rename(key).with_columns(dose_mg_per_kg=pl.lit(None, pl.Float64))
        return {
            "patients": self.patients.rename(key),
            "follow_ups": self.follow_ups.rename(key),
            "ketamine_administrations": ketamine,
            "hads": self.hads.rename(key),
            "sf12": self.sf12.rename(key),
            "adverse_events": self.adverse_events.rename(key),
            "concomitant_treatments": self.treatments.rename(key),
        }

    def truth(self) -> dict:
        """The parameters and the population quantities a correct analysis recovers."""
        p = self.parameters
        group_slope = sum(g.share * g.slope for g in p.groups) / sum(g.share for g in p.groups)
        depressed = _mean(self.latent["depressed"])
        return {
            "parameters": _jsonable(asdict(p)),
            "expected_slope": group_slope + (1 - depressed) * p.no_depression_extra_slope,
            "realised_mean_slope": _mean(self.latent["slope"]),
            "realised_group_shares": {
                g: float(s)
                for g, s in self.latent["group"]
                .value_counts(normalize=True)
                .sort("group")
                .iter_rows()
            },
            "share_depressed": float(depressed),
            "n_patients": self.patients.height,
            "n_follow_up_rows": self.follow_ups.height,
        }


def simulate_cohort(params: SimulationParameters | None = None) -> SimulatedCohort:
    """Draw one cohort; the same parameters (seed included) give the same cohort."""
    p = params or SimulationParameters()
    rng = np.random.default_rng(p.seed)
    centres = _centres(p, rng)
    patients = _patients(p, rng, centres)
    hads = _hads_baseline(p, rng, patients)
    latent = _latent_trajectories(p, rng, patients, hads)
    follow_ups = _follow_ups(p, rng, patients, latent)
    hads = pl.concat([hads, _hads_follow_up(p, rng, hads, latent)])
    sf12 = _sf12(p, rng, patients, latent)
    ketamine = _ketamine(rng, patients, latent)
    return SimulatedCohort(
        parameters=p,
        centres=centres,
        patients=patients,
        follow_ups=follow_ups,
        hads=hads,
        sf12=sf12,
        ketamine=ketamine,
        adverse_events=_adverse_events(p, rng, ketamine),
        treatments=_treatments(rng, patients),
        latent=latent,
    )


def _centres(p: SimulationParameters, rng: np.random.Generator) -> pl.DataFrame:
    if p.n_patients < p.n_centres:
        raise ValueError(f"{p.n_patients} patients cannot fill {p.n_centres} centres")
    weights = np.exp(rng.normal(0, p.centre_size_spread, p.n_centres))
    floor = min(2, p.n_patients // p.n_centres)  # every centre includes a few patients
    sizes = np.full(p.n_centres, floor, dtype=int)
    sizes += rng.multinomial(p.n_patients - sizes.sum(), weights / weights.sum())
    return pl.DataFrame(
        {"centre_id": [f"C{i + 1:02d}" for i in range(p.n_centres)], "n_patients": sizes}
    )


def _patients(p: SimulationParameters, rng: np.random.Generator, centres: pl.DataFrame):
    centre_of = np.repeat(centres["centre_id"].to_numpy(), centres["n_patients"].to_numpy())
    n = len(centre_of)
    local_number = (
        (pl.DataFrame({"c": centre_of}).select(pl.int_range(1, pl.len() + 1).over("c")))
        .to_series()
        .to_numpy()
    )
    offsets = rng.integers(0, p.inclusion_window_days + 1, n)
    female = rng.random(n) < p.female_share
    weight = np.where(female, rng.normal(68, 13, n), rng.normal(81, 14, n)).clip(40, 160)
    return pl.DataFrame(
        {
            "centre_id": centre_of,
            "patient_id": [f"{c}-{k:04d}" for c, k in zip(centre_of, local_number, strict=True)],
            "sex": np.where(female, "F", "M"),
            "age": np.clip(np.round(rng.normal(p.age_mean, p.age_sd, n)), 18, 90).astype(int),
            "pain_diagnosis": rng.choice(PAIN_DIAGNOSES, n, p=[0.45, 0.25, 0.15, 0.15]),
            "weight_kg": np.round(weight, 1),
            "inclusion_date": [p.first_inclusion + dt.timedelta(days=int(d)) for d in offsets],
        }
    )


def _items_from_latent(rng, total: np.ndarray, n_items: int, top: int) -> np.ndarray:
    """Integer items 0..top whose sum tracks a latent total (noise per item)."""
    per_item = total[:, None] / n_items + rng.normal(0, 0.6, (len(total), n_items))
    return np.clip(np.round(per_item), 0, top).astype(int)


def _hads_frame(patients: pl.DataFrame, month: int, anx: np.ndarray, dep: np.ndarray):
    cols = {f"hads_a{i + 1}": anx[:, i] for i in range(7)}
    cols |= {f"hads_d{i + 1}": dep[:, i] for i in range(7)}
    return pl.DataFrame(
        {
            "centre_id": patients["centre_id"],
            "patient_id": patients["patient_id"],
            "month": month,
            **cols,
        }
    ).with_columns(pl.col("month").cast(pl.Int64))


def _hads_baseline(p, rng, patients: pl.DataFrame) -> pl.DataFrame:
    n = patients.height
    anx = _items_from_latent(rng, rng.normal(p.hads_a_mean, p.hads_sd, n), 7, 3)
    dep = _items_from_latent(rng, rng.normal(p.hads_d_mean, p.hads_sd, n), 7, 3)
    return _hads_frame(patients, 0, anx, dep)


def _latent_trajectories(p, rng, patients: pl.DataFrame, hads: pl.DataFrame) -> pl.DataFrame:
    n = patients.height
    shares = np.array([g.share for g in p.groups])
    group_idx = rng.choice(len(p.groups), n, p=shares / shares.sum())
    cov = p.intercept_slope_corr * p.intercept_sd * p.slope_sd
    re = rng.multivariate_normal([0, 0], [[p.intercept_sd**2, cov], [cov, p.slope_sd**2]], n)
    hads_d = hads.select(pl.sum_horizontal(pl.col("^hads_d\\d$"))).to_series().to_numpy()
    depressed = hads_d >= 8
    intercept = np.array([p.groups[g].intercept for g in group_idx]) + re[:, 0]
    slope = (
        np.array([p.groups[g].slope for g in group_idx])
        + re[:, 1]
        + np.where(depressed, 0.0, p.no_depression_extra_slope)
    )
    # Months answered before dropout: geometric, capped at the end of follow-up.
    last_month = np.minimum(rng.geometric(p.monthly_dropout, n) - 1, 12)
    return pl.DataFrame(
        {
            "centre_id": patients["centre_id"],
            "patient_id": patients["patient_id"],
            "group": [p.groups[g].name for g in group_idx],
            "intercept": intercept,
            "slope": slope,
            "depressed": depressed,
            "last_month": last_month,
        }
    )


def _follow_ups(p, rng, patients: pl.DataFrame, latent: pl.DataFrame) -> pl.DataFrame:
    months = np.arange(13)
    n = patients.height
    mean = latent["intercept"].to_numpy()[:, None] + latent["slope"].to_numpy()[:, None] * months
    nprs = np.clip(np.round(mean + rng.normal(0, p.residual_sd, (n, 13))), 0, 10).astype(int)
    answered = (months[None, :] <= latent["last_month"].to_numpy()[:, None]) & (
        (rng.random((n, 13)) >= p.missed_call_rate) | (months[None, :] == 0)
    )
    jitter = rng.integers(-4, 5, (n, 13))
    jitter[:, 0] = 0
    rows = []
    for i, (centre, pid, incl) in enumerate(
        patients.select("centre_id", "patient_id", "inclusion_date").iter_rows()
    ):
        for m in months[answered[i]]:
            call = incl + dt.timedelta(days=int(round(30.44 * m)) + int(jitter[i, m]))
            rows.append((centre, pid, int(m), call, int(nprs[i, m])))
    return pl.DataFrame(
        rows,
        schema={
            "centre_id": pl.String,
            "patient_id": pl.String,
            "month": pl.Int64,
            "call_date": pl.Date,
            "nprs": pl.Int64,
        },
        orient="row",
    )


def _hads_follow_up(p, rng, hads: pl.DataFrame, latent: pl.DataFrame) -> pl.DataFrame:
    """HADS at month 12 for patients still followed: scores drift a little lower."""
    still = latent["last_month"].to_numpy() >= 12
    base = hads.filter(pl.Series(still))
    shift = rng.integers(-1, 1, (base.height, 14))  # -1 or 0 per item
    items = base.select(pl.col("^hads_.*$")).to_numpy() + shift
    items = np.clip(items, 0, 3)
    return _hads_frame(base.select("centre_id", "patient_id"), 12, items[:, :7], items[:, 7:])


def _sf12_items(rng, physical: np.ndarray, mental: np.ndarray, stable: np.ndarray, sd: float):
    """Categorical answers from latent physical/mental health (standard normal scale),
    each item's own noise: ``stable`` (patient x item, the same at both times) plus a
    fresh draw of SD ``sd``."""
    out = {}
    for j, (item, (lo, hi, w_phys, w_ment)) in enumerate(SF12_ITEMS.items()):
        latent = (w_phys * physical + w_ment * mental) / np.hypot(w_phys, w_ment)
        latent = latent + stable[:, j] + rng.normal(0, sd, len(physical))
        k = hi - lo + 1
        # Cut points spread the answers over the categories, leaning towards poor health.
        cuts = np.linspace(-1.2, 1.6, k + 1)[1:-1]
        category = np.searchsorted(cuts, latent)  # 0 = worst health
        out[item] = (lo + category) if item in SF12_HIGHER_IS_BETTER else (hi - category)
    return out


def _sf12(p, rng, patients: pl.DataFrame, latent: pl.DataFrame) -> pl.DataFrame:
    n = patients.height
    z_physical, z_other = rng.standard_normal((2, n))
    rho = p.physical_mental_corr
    z_mental = rho * z_physical + np.sqrt(1 - rho * rho) * z_other
    physical = p.physical_mean + p.physical_sd * z_physical
    depressed = latent["depressed"].to_numpy()
    mental = p.mental_mean + p.mental_sd * z_mental - p.depression_mental_shift * depressed
    stable_sd = p.sf12_item_noise * np.sqrt(p.sf12_item_persistence)
    stable = rng.normal(0, stable_sd, (n, len(SF12_ITEMS)))
    occasion_sd = p.sf12_item_noise * np.sqrt(1 - p.sf12_item_persistence)
    frames = []
    for month in (0, 12):
        keep = np.ones(n, bool) if month == 0 else latent["last_month"].to_numpy() >= 12
        if month == 12:
            physical = physical + p.physical_gain + rng.normal(0, p.sf12_change_sd, n)
            mental = mental + p.mental_gain + rng.normal(0, p.sf12_change_sd, n)
        items = _sf12_items(rng, physical, mental, stable, occasion_sd)
        frames.append(
            pl.DataFrame(
                {
                    "centre_id": patients["centre_id"],
                    "patient_id": patients["patient_id"],
                    "month": month,
                    **items,
                }
            ).filter(pl.Series(keep))
        )
    return pl.concat(frames).with_columns(pl.col("month").cast(pl.Int64))


def _ketamine(rng, patients: pl.DataFrame, latent: pl.DataFrame) -> pl.DataFrame:
    """A first session at inclusion, then about one every four months while followed."""
    last = latent["last_month"].to_numpy()
    n_sessions = 1 + rng.poisson(1 + last / 4)
    later = np.repeat(np.arange(patients.height), n_sessions - 1)
    days = rng.integers(1, 30 * np.maximum(last, 1)[later] + 1)
    sessions = pl.concat(
        [
            pl.DataFrame({"row": np.arange(patients.height), "day": 0}),
            pl.DataFrame({"row": later, "day": days}),
        ],
        how="vertical_relaxed",
    ).sort("row", "day")
    n = sessions.height
    mg_per_kg = rng.lognormal(np.log(1.5), 0.35, n)
    setting = rng.choice(["day_hospital", "inpatient"], p=[0.7, 0.3], size=n)
    base = patients.select("centre_id", "patient_id", "inclusion_date", "weight_kg")
    return (
        sessions.with_columns(
            mg_per_kg=pl.Series(mg_per_kg), setting=pl.Series(setting, dtype=pl.String)
        )
        .join(base.with_row_index("row").with_columns(pl.col("row").cast(pl.Int64)), on="row")
        .with_columns(
            sequence=(pl.int_range(pl.len()).over("row") + 1).cast(pl.Int64),
            administration_date=pl.col("inclusion_date") + pl.duration(days=pl.col("day")),
            dose_mg=(pl.col("mg_per_kg") * pl.col("weight_kg")).round(1),
            route=pl.lit("iv"),
        )
        .sort("row", "sequence")
        .select(
            "centre_id",
            "patient_id",
            "sequence",
            "administration_date",
            "dose_mg",
            "route",
            "setting",
        )
    )


def _treatments(rng, patients: pl.DataFrame) -> pl.DataFrame:
    """Drug classes at baseline, each independently at its prevalence."""
    classes = list(TREATMENT_PREVALENCE)
    taken = rng.random((patients.height, len(classes))) < np.array(
        list(TREATMENT_PREVALENCE.values())
    )
    rows, cols = np.nonzero(taken)
    return patients.select("centre_id", "patient_id")[rows].with_columns(
        month=pl.lit(0, dtype=pl.Int64),
        drug_class=pl.Series(np.array(classes)[cols], dtype=pl.String),
    )


def _adverse_events(p, rng, ketamine: pl.DataFrame) -> pl.DataFrame:
    """About half the patients report an adverse effect the week after a procedure."""
    hit = np.nonzero(rng.random(ketamine.height) < p.adverse_event_rate)[0]
    n = len(hit)
    delay = rng.integers(0, 8, n)
    ae_type = rng.choice(list(AE_PROBABILITIES), p=list(AE_PROBABILITIES.values()), size=n)
    severity = rng.choice(["mild", "moderate", "severe"], p=[0.65, 0.3, 0.05], size=n)
    return ketamine.select("centre_id", "patient_id", "administration_date")[hit].select(
        "centre_id",
        "patient_id",
        onset_date=pl.col("administration_date") + pl.duration(days=pl.lit(pl.Series(delay))),
        ae_type=pl.Series(ae_type, dtype=pl.String),
        severity=pl.Series(severity, dtype=pl.String),
    )


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _mean(column: pl.Series) -> float:
    """A numeric (or boolean) column's mean, as a float for the truth file."""
    return float(cast(float, column.mean()))

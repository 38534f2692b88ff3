"""Pain trajectories: a growth mixture model of NPRS over months 0-12, LCGA beside it.

Two models for each number of groups K, both with a quadratic mean trajectory per group
(in month/12), a normal outcome and a common residual SD (models.growth_mixture):

- GMM, the model the groups are chosen from: every patient also has a random intercept
  and slope, their covariance G (unstructured) the same in every group. Patients vary
  around their group's course (the simulator draws them so, and real patients do); the
  GMM puts that spread in G, so its groups describe only distinct mean courses.
- LCGA (no random effects, Nagin's group-based model, as the companion paper fitted):
  published beside it for comparison. With spread within groups its BIC keeps falling
  with K (it adds groups to absorb the spread): its status says so.

Selection (``SELECTION_RULE``, stated in the manifest): the GMM with the lowest BIC
(n = patients) among the *adequate* ones (every group's APPA >= 0.7 and share >= 5 %).
If BIC is lowest at the largest K tried, the number of groups is *not determined*
(status ``not determined within K <= 6``): no model is selected, nothing is read off the
largest one. K runs from 1 up, and stops two K past the lowest BIC (or at MAX_GROUPS).

Each K is fitted from several starts (the K-1 solution with each group split, the LCGA's
groups, then seeded random ones), stopping once two starts agree on the best optimum or
five in a row find none better. Up to FIT_SAMPLE patients the models see every patient;
beyond, a seeded random sample of that many (every statistic of the selection then
describes it), and every patient gets posterior probabilities from the selected model.
Curves' CIs: delta method from the inverse observed information.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import polars as pl

from models.analysis import Fitted, Options, Specification, Views
from models.growth_mixture import (
    PATIENCE,
    GmmFit,
    GmmParameters,
    evaluate,
    fit_gmm,
    posterior_of,
)
from models.mixture import PatientSums, pooled_line, random_start
from models.trajectory_tables import (
    adjusted_rand_index,
    group_table,
    membership_table,
    selection_rows,
    trajectory_table,
)

NAME = "trajectory"
MONTHS = np.arange(13)
DEGREE = 2
RANDOM_EFFECTS = 2  # random intercept and slope
MAX_GROUPS = 6
MIN_APP = 0.7
MIN_SHARE = 0.05
PAST_MINIMUM = 2  # models fitted beyond the lowest BIC before stopping
FIT_SAMPLE = 10_000
SELECTION_RULE = (
    f"growth mixture model with the lowest BIC (n = patients) among those whose every "
    f"group has an average posterior probability of assignment (APPA) >= {MIN_APP} and an "
    f"estimated share >= {MIN_SHARE:.0%}; if BIC is lowest at the largest number of groups "
    f"tried ({MAX_GROUPS}), the number of groups is not determined and none is selected"
)
SPECIFICATION = {
    "model": "growth mixture model: quadratic mean trajectory per group in month/12, "
    "random intercept and slope per patient with one unstructured covariance for all "
    "groups, normal outcome, common residual SD (maximum likelihood)",
    "comparison": "LCGA (no random effects), the same mean trajectories, published beside",
    "groups_tried": f"1 up to {MAX_GROUPS}, stopping {PAST_MINIMUM} groups past the lowest BIC",
    "selection_rule": SELECTION_RULE,
    "selection_table": "per model and number of groups: log-likelihood, parameters, BIC, "
    "AIC, relative entropy, smallest APPA, smallest share, starts run and agreeing",
    "bootstrap_lrt": "not computed (BIC with the adequacy rule decides)",
    "missing": "each patient's likelihood uses the visits observed (MAR)",
    "fit_sample": f"all patients up to {FIT_SAMPLE:,}; beyond, a seeded random sample of that "
    "many (the selection table, groups and curves describe it); posterior probabilities "
    "under the selected model for every patient",
    "ci": "delta method, inverse observed information (Hessian of the analytic gradient)",
}


@dataclass
class TrajectoryData:
    """Every patient's sums (patients in key order) and the visits they come from."""

    patient_keys: pl.Series  # (n,) sorted
    sums: PatientSums
    visits: pl.DataFrame  # patient_key, month, nprs: one row per observed visit

    def subset(self, rows: np.ndarray) -> TrajectoryData:
        """Some patients (``rows``: sorted indices), their sums and visits."""
        keys = self.patient_keys.gather(rows)
        visits = self.visits.filter(pl.col("patient_key").is_in(keys.implode()))
        return TrajectoryData(keys, self.sums.subset(rows), visits)

    def visit_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each visit's patient (index into ``patient_keys``), month and NPRS."""
        index = pl.DataFrame({"patient_key": self.patient_keys}).with_row_index("patient")
        joined = self.visits.join(index, on="patient_key")
        return joined["patient"].to_numpy(), joined["month"].to_numpy(), joined["nprs"].to_numpy()


@dataclass
class TrajectoryResult:
    selection: pl.DataFrame  # per model and number of groups: fit statistics, adequacy
    groups: pl.DataFrame  # every model: one row per group (``selected`` marks the chosen)
    trajectories: pl.DataFrame  # every model: one row per group and month
    membership: pl.DataFrame  # selected model: one row per patient and group
    chosen: int  # groups of the selected GMM; 0 when not determined
    status: str
    gmm: list[GmmFit]
    lcga: list[GmmFit]


def trajectory_data(analysis: pl.DataFrame) -> TrajectoryData:
    """Every observed NPRS of months 0-12 and each patient's sums, patients in key order.

    The visits are sorted by patient (polars, on every core), numbered where the key
    changes, and summed per patient by numpy's bincount: a third of the time of a polars
    group-by on the string keys, at a million patients.
    """
    visits = (
        analysis.select("patient_key", "month", pl.col("nprs").cast(pl.Float64))
        .drop_nulls()
        .filter(pl.col("month").is_between(0, 12))
        .sort("patient_key")
    )
    key = visits["patient_key"]
    first = key.ne_missing(key.shift(1)).fill_null(True)
    patient = first.cast(pl.Int64).cum_sum().to_numpy() - 1
    design = np.vander(MONTHS / 12, DEGREE + 1, increasing=True)
    month = visits["month"].to_numpy().astype(np.int64)
    nprs = visits["nprs"].to_numpy()
    sums = PatientSums.from_visits(patient, month, nprs, int(first.sum()), design)
    check_visits(sums)
    return TrajectoryData(key.filter(first), sums, visits)


def check_visits(sums: PatientSums) -> None:
    """One NPRS per patient and month, and enough distinct months for the trajectories."""
    repeated = int((sums.n_visits != sums.masks[sums.pattern].sum(axis=1)).sum())
    if repeated:
        raise ValueError(
            f"analysis_patient_months: {repeated} patients have a month recorded twice "
            "(rule: one NPRS per patient and month)"
        )
    months = int(sums.masks.max(axis=0, initial=0).sum())
    if months <= DEGREE:
        raise ValueError(
            f"analysis_patient_months: NPRS observed at {months} distinct months (rule: a "
            f"degree-{DEGREE} trajectory needs at least {DEGREE + 1})"
        )


def fitting_sample(data: TrajectoryData, max_patients: int, seed: int) -> TrajectoryData:
    """All patients, or a seeded random sample of ``max_patients`` of them (key order)."""
    n = len(data.patient_keys)
    if n <= max_patients:
        return data
    keep = np.sort(np.random.default_rng([seed, n]).choice(n, max_patients, replace=False))
    return data.subset(keep)


def stop_here(fits: list[GmmFit], n_subjects: int, max_groups: int) -> bool:
    """Enough groups tried: the largest number, or PAST_MINIMUM past the lowest BIC."""
    bics = [f.bic(n_subjects) for f in fits]
    return len(fits) >= max_groups or int(np.argmin(bics)) <= len(fits) - 1 - PAST_MINIMUM


def fit_path(
    sums: PatientSums,
    random_effects: int,
    *,
    seed: int,
    n_starts: int,
    max_groups: int,
    guides: list[GmmFit] | None = None,
) -> list[GmmFit]:
    """One model for K = 1, 2, ... (``random_effects``: 2 for the GMM, 0 for LCGA); each K
    from the K-1 solution split, the guide's K groups (the LCGA's, for the GMM), then
    random starts."""
    fits = [fit_gmm(sums, [first_start(sums, random_effects)], max_starts=1)]
    while not stop_here(fits, sums.n_patients, max_groups):
        k = len(fits) + 1
        rng = np.random.default_rng([seed, k, random_effects])
        guide = guides[k - 1] if guides and k <= len(guides) else None
        fits.append(fit_gmm(sums, starts(sums, fits[-1], guide, rng), max_starts=n_starts))
    return fits


def first_start(sums: PatientSums, random_effects: int) -> GmmParameters:
    """One group: the pooled line; half the spread of patients' mean levels as the random
    intercept's variance, a slope SD of half a point a year."""
    beta, sigma = pooled_line(sums)
    levels = sums.xy[:, 0] / sums.n_visits
    sd = np.sqrt(max(levels.var() / 2, 0.01))
    chol = np.diag([sd, 0.5])[:random_effects, :random_effects]
    return GmmParameters(np.ones(1), beta[None, :], chol, sigma)


def starts(
    sums: PatientSums, previous: GmmFit, guide: GmmFit | None, rng: np.random.Generator
) -> Iterator[GmmParameters]:
    """Starts for K groups: K-1 groups with each split (largest first), the guide's K
    groups, then random ones (pooled trajectory shifted to random patients' levels); the
    random-effect covariance and residual SD from the K-1 solution."""
    p = previous.params
    spread = np.sqrt(p.covariance[0, 0]) if len(p.chol) else p.sigma
    for j in np.argsort(-p.shares):
        betas = np.vstack([p.betas, p.betas[j]])
        betas[j, 0] -= 0.7 * spread
        betas[-1, 0] += 0.7 * spread
        shares = np.append(p.shares, p.shares[j] / 2)
        shares[j] /= 2
        yield GmmParameters(shares, betas, p.chol, p.sigma)
    k = len(p.shares) + 1
    if guide is not None:
        yield GmmParameters(guide.params.shares, guide.params.betas, p.chol, p.sigma)
    while True:
        betas, _ = random_start(sums, k, rng)
        yield GmmParameters(np.full(k, 1 / k), betas, p.chol, p.sigma)


def select(table: pl.DataFrame) -> tuple[int, str]:
    """The selected number of groups of one model's rows (0 if none) and the status."""
    best = table.sort("bic").row(0, named=True)["n_groups"]
    if best == table["n_groups"].max() and best > 1:
        return 0, f"not determined within K <= {best}: BIC still falling"
    adequate = table.filter("adequate").sort("bic")
    if adequate.is_empty():
        return 0, "not determined: no adequate model"
    chosen = int(adequate.row(0, named=True)["n_groups"])
    if chosen == best:
        return chosen, "selected: lowest BIC, adequate"
    return chosen, (
        f"selected among adequate models: the lowest BIC ({best} groups) has a group "
        f"under {MIN_SHARE:.0%} or an APPA under {MIN_APP}"
    )


def selection_table(gmm: list[GmmFit], lcga: list[GmmFit], n_cohort: int) -> pl.DataFrame:
    """Both models' rows, their adequacy, status and the selected GMM."""
    tables = []
    for model, fits in (("gmm", gmm), ("lcga", lcga)):
        table = selection_rows(fits, model).with_columns(
            adequate=(pl.col("min_app") >= MIN_APP) & (pl.col("min_share") >= MIN_SHARE)
        )
        chosen, status = select(table)
        tables.append(
            table.with_columns(
                status=pl.lit(status),
                selected=(pl.col("n_groups") == chosen) & pl.lit(model == "gmm"),
            )
        )
    return pl.concat(tables, how="diagonal_relaxed").with_columns(n_patients_cohort=n_cohort)


def fit_trajectories(
    analysis: pl.DataFrame,
    *,
    seed: int,
    n_starts: int = 20,
    max_groups: int = MAX_GROUPS,
    max_patients: int = FIT_SAMPLE,
) -> TrajectoryResult:
    """Fit both models for K = 1, 2, ..., select the GMM's number of groups, describe it."""
    data = trajectory_data(analysis)
    sample = fitting_sample(data, max_patients, seed)
    path = partial(fit_path, sample.sums, seed=seed, n_starts=n_starts, max_groups=max_groups)
    lcga = path(0)
    gmm = path(RANDOM_EFFECTS, guides=lcga)
    selection = selection_table(gmm, lcga, len(data.patient_keys))
    chosen_rows = selection.filter("selected")
    chosen = int(chosen_rows["n_groups"].item()) if chosen_rows.height else 0
    status = str(selection.filter(pl.col("model") == "gmm")["status"].first())
    groups, curves = describe_models({"gmm": gmm, "lcga": lcga}, chosen, sample)
    if chosen:
        posterior = posterior_of(gmm[chosen - 1].params, data.sums)
        membership = membership_table(posterior, data.patient_keys)
    else:
        membership = membership_table(np.zeros((0, 1)), data.patient_keys.head(0))
    return TrajectoryResult(selection, groups, curves, membership, chosen, status, gmm, lcga)


def describe_models(
    models: dict[str, list[GmmFit]], chosen: int, sample: TrajectoryData
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Groups and curves of every model fitted, the selected GMM's marked."""
    groups, curves = [], []
    visits = sample.visit_arrays()
    for model, fits in models.items():
        for fit in fits:
            tag = {"model": model, "n_groups": fit.n_groups}
            selected = model == "gmm" and fit.n_groups == chosen
            groups.append(_tagged(group_table(fit), tag, selected))
            curves.append(_tagged(trajectory_table(fit, visits), tag, selected))
    return pl.concat(groups), pl.concat(curves)


def _tagged(table: pl.DataFrame, tags: dict, selected: bool) -> pl.DataFrame:
    """Prefix a model's table with its model, number of groups and whether it was selected."""
    columns = [pl.lit(v).alias(k) for k, v in tags.items()] + [pl.lit(selected).alias("selected")]
    return table.select(*columns, pl.all())


def specification(options: Options) -> Specification:
    run = {
        "estimation": "maximum likelihood: BFGS on the analytic gradient, then Newton steps; "
        f"per number of groups up to {options.n_starts} starts, stopping once two agree on the "
        f"best optimum or {PATIENCE} in a row find none better",
        "seed": options.seed,
    }
    return {"trajectory": SPECIFICATION | run}


def fit(views: Views, options: Options) -> Fitted:
    """Trajectories of ``analysis_patient_months``: trajectory_* tables."""
    months = views["analysis_patient_months"]
    result = fit_trajectories(months, seed=options.seed, n_starts=options.n_starts)
    tables = {
        "trajectory_selection": result.selection,
        "trajectory_groups": result.groups,
        "trajectory_curves": result.trajectories,
        "trajectory_membership": result.membership,
    }
    # The selected model's convergence; with none selected, every GMM's (each row of the
    # selection table has its own).
    gmm = result.selection.filter(pl.col("model") == "gmm")
    chosen = gmm.filter("selected") if result.chosen else gmm
    return Fitted(result, tables, converged=bool(chosen["converged"].all()))


REFERENCE_DATA = Path(__file__).resolve().parents[1] / "tests" / "data"


def validation_rows(data_dir: Path = REFERENCE_DATA) -> list[str]:
    """docs/validation.md's trajectory section (scripts/validation.py reads it): ours
    against flexmix (LCGA) and lme4 (one group) on tests/data/trajectory_visits.csv, and
    the selection against the simulator's latent groups of the same patients."""
    reference = json.loads((data_dir / "trajectory_reference.json").read_text())
    visits = pl.read_csv(data_dir / "trajectory_visits.csv")
    result = fit_trajectories(visits, seed=1, n_starts=20)
    versions = reference["versions"]
    lines = [
        f"{reference['n_patients']} simulated patients, {reference['n_visits']} patient-months "
        f"(`tests/data/trajectory_visits.csv`); flexmix {versions['flexmix']} "
        f"(`FLXMRglmfix(varFix = TRUE)`, 20 starts), lme4 {versions['lme4']} (ML). flexmix "
        "divides the residual sum of squares by its degrees of freedom, so its optimum sits "
        "a little below the ML one: the likelihoods are compared at flexmix's estimates too.",
        "",
        "| model | quantity | ours | R | truth |",
        "|---|---|---|---|---|",
    ]
    lines += _lcga_rows(reference, trajectory_data(visits).sums, result)
    lines += _one_group_rows(reference, result)
    lines += _truth_rows(visits, result)
    return lines


def _lcga_rows(reference: dict, sums: PatientSums, result: TrajectoryResult) -> list[str]:
    """Per K: the log-likelihood at flexmix's estimates and at each optimum, the shares."""
    lines = []
    for r, ours in zip(reference["lcga"], result.lcga, strict=False):
        betas = np.array([np.atleast_1d(r[c]) for c in ("intercept", "t", "t2")]).T
        at_r = GmmParameters(np.atleast_1d(r["shares"]), betas, np.zeros((0, 0)), r["sigma"])
        model, shares = f"LCGA, K = {r['k']}", np.sort(np.atleast_1d(r["shares"]))
        lines += [
            f"| {model} | log-likelihood at flexmix's estimates | "
            f"{evaluate(at_r, sums)[1]:.6f} | {r['log_likelihood']:.6f} | |",
            f"| {model} | log-likelihood at the optimum; parameters | "
            f"{ours.log_likelihood:.6f}; {ours.n_parameters} | {r['log_likelihood']:.6f}; "
            f"{r['df']} | |",
            f"| {model} | shares | {_shares(np.sort(ours.params.shares))} | {_shares(shares)} | |",
        ]
    return lines


def _one_group_rows(reference: dict, result: TrajectoryResult) -> list[str]:
    """The one-group GMM against lme4's linear mixed model (ML)."""
    ours, r = result.gmm[0], reference["gmm1_intercept_slope"]
    g = ours.params.covariance
    return [
        f"| GMM, K = 1: LMM (t \\| patient) | log-likelihood (ML) | "
        f"{ours.log_likelihood:.6f} | {r['log_likelihood']:.6f} | |",
        f"| GMM, K = 1: LMM (t \\| patient) | intercept, t, t^2 | "
        f"{', '.join(f'{b:.5f}' for b in ours.params.betas[0])} | "
        f"{', '.join(f'{b:.5f}' for b in r['fixed'])} | |",
        f"| GMM, K = 1: LMM (t \\| patient) | var(intercept), var(t), cov, sigma | "
        f"{g[0, 0]:.5f}, {g[1, 1]:.5f}, {g[0, 1]:.5f}, {ours.params.sigma:.5f} | "
        f"{', '.join(f'{v:.5f}' for v in r['vcov'][:3])}, {r['sigma']:.5f} | |",
    ]


def _truth_rows(visits: pl.DataFrame, result: TrajectoryResult) -> list[str]:
    """The selected GMM against the simulator's latent groups of the same patients."""
    latent = visits.group_by("patient_key").agg(pl.col("group").first())
    assigned = result.membership.filter("assigned").join(latent, on="patient_key")
    realised = latent["group"].value_counts(normalize=True).sort("group")
    truth = dict(realised.iter_rows())
    ari = adjusted_rand_index(assigned["group"].to_numpy(), assigned["group_right"].to_numpy())
    shares = result.groups.filter("selected")["share"].to_numpy()
    return [
        f"| GMM, selected | number of groups; status | {result.chosen}; {result.status} | | 3 |",
        f"| GMM, selected | shares | {_shares(shares)} | | "
        f"{_shares(np.array([truth[g] for g in ('mild', 'moderate', 'severe')]))} |",
        f"| GMM, selected | adjusted Rand index against the latent groups | {ari:.3f} | | |",
    ]


def _shares(shares: np.ndarray) -> str:
    return " / ".join(f"{s:.1%}" for s in shares)

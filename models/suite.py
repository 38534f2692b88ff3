"""Every model of the study, fitted on one snapshot's views and published together.

One call for the flow and the CLI: ``fit_and_publish_all(views, out_dir, ...)`` runs each
analysis of ``ANALYSES`` in turn (each module owns its specification and its ``fit``,
models.analysis), writes their tidy parquet files into ``out_dir`` with one
``manifest.json`` that lists every file and the specification of every model (formula,
estimation, the engine that fitted it, contrast scaling, seed, selection rule).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from cohortflow import progress
from models import centre, descriptives, interaction, mediation, policy, primary, trajectory
from models.analysis import Analysis, Fitted, Options, Specification, Views
from models.primary import PrimaryResult
from models.publish import publish_results

DEFAULT_SEED = 20230516
# In this order: the primary model first (nothing is published without it).
ANALYSES: tuple[Analysis, ...] = (primary, interaction, centre, trajectory, mediation, descriptives)

# What the models read: the nightly fit loads these views with these columns only (a
# million patients' views in full hold about 4 GB in memory; these, about a third).
MODEL_INPUTS: dict[str, tuple[str, ...]] = {
    "analysis_patient_months": ("patient_key", "centre_id", "month", "nprs", "depressed"),
    "analysis_patients": tuple(
        dict.fromkeys(
            ["patient_key", "centre_id", *mediation.COLUMNS]
            + [f"{s}_{t}" for s in descriptives.SF12_SCORES for t in ("baseline", "one_year")]
        )
    ),
    "hads_scored": ("patient_key", "month", *descriptives.HADS_SCORES),
    "adverse_events": ("patient_key", "centre_id", "ae_type", "severity"),
}


# The published tables ``summarise`` reads for the headline (a carried analysis's others,
# e.g. a million patients' trajectory memberships, are linked, never loaded).
HEADLINE_TABLES = (
    "lmm_interaction_test",
    "trajectory_selection",
    "trajectory_groups",
    "mediation_effects",
)


@dataclass
class StudyResults:
    """The headline numbers (for a console summary) and where the full results are.

    A secondary analysis that failed is absent (empty dict or list, 0 groups) and named
    in ``failed`` with its error.
    """

    primary: PrimaryResult  # the primary model's fit and effect size
    effect_size: dict  # primary: estimate, ci_low, ci_high
    interaction: dict  # month:depressed: estimate, ci_low, ci_high, p_value, lrt_chi2, lrt_p
    trajectory_groups: int  # number of groups selected
    trajectory_shares: list[float]  # their estimated shares, group 1 (lowest pain) first
    mediation: dict  # effect name -> its row: estimate, ci_low, ci_high, status (null if not)
    sf12: dict  # score -> (baseline mean, one-year mean, paired t-test p)
    fit_seconds: dict[str, float]
    failed: dict[str, str]  # step -> error, for secondary analyses that could not run
    manifest: Path
    centre: dict = field(default_factory=dict)  # centre variance, singular (or empty)
    trajectory_status: str = ""  # how the number of groups was chosen, or why it was not
    as_of: dict[str, dict] = field(default_factory=dict)  # analysis -> what it was fitted on
    carried: list[str] = field(default_factory=list)  # analyses carried over (models.policy)


@dataclass
class SuiteRun:
    """What running every analysis gave: by step name, and the manifest's specification."""

    fitted: dict[str, Fitted]
    specification: Specification
    seconds: dict[str, float]
    failed: dict[str, str]
    carried_tables: dict[str, pl.DataFrame] = field(default_factory=dict)  # for the headline
    carried_files: dict[str, Path] = field(default_factory=dict)  # republished as they are

    @property
    def tables(self) -> dict[str, pl.DataFrame]:
        fitted = {name: table for f in self.fitted.values() for name, table in f.tables.items()}
        return self.carried_tables | fitted


def fit_all(views: Views, options: Options, only: tuple[str, ...] | None = None) -> SuiteRun:
    """Run every analysis (``only``: these); a secondary analysis that fails is recorded,
    not fatal.

    The primary model raises as before (nothing is published without it); any other
    analysis that raises (e.g. no patient has reached month 12 yet) is left out of the
    published set and its error goes to the manifest, so one never blocks the others.
    """
    run = SuiteRun({}, {}, {}, {})
    chosen = [a for a in ANALYSES if only is None or a.NAME in only]
    with progress.step("Fitting models", total=len(chosen)) as step:
        for analysis in chosen:
            _fit_one(run, analysis, views, options)
            step.advance()
    return run


def _fit_one(run: SuiteRun, analysis: Analysis, views: Views, options: Options) -> None:
    run.specification |= analysis.specification(options)
    start = time.perf_counter()
    try:
        fitted = analysis.fit(views, options)
    except Exception as error:  # noqa: BLE001 - recorded in the manifest, see fit_all
        if analysis.NAME == primary.NAME:
            raise
        run.failed[analysis.NAME] = f"{type(error).__name__}: {error}"
        return
    run.fitted[analysis.NAME] = fitted
    run.seconds[analysis.NAME] = round(time.perf_counter() - start, 2)
    for name, entries in fitted.specification.items():
        run.specification[name] = run.specification.get(name, {}) | entries


def fit_and_publish_all(
    views: Views,
    out_dir: Path,
    *,
    run_id: str,
    snapshot_id: str,
    seed: int = DEFAULT_SEED,
    n_rep: int = 1000,
    n_starts: int = 20,
    engine: str = "fast",
    previous: Path | None = None,
    force: bool = True,
) -> StudyResults:
    """Fit the study's models on ``build_views`` output (+ ``adverse_events``), publish.

    ``n_rep`` (mediation bootstrap replicates) and ``n_starts`` (EM starts per number of
    trajectory groups) trade time for precision; tests lower them. ``engine`` fits the
    mixed models ("fast", or "statsmodels", the reference); the manifest says which ran.
    ``previous``: the last published manifest; with ``force=False`` the refit policy
    (``models.policy``) decides which analyses are fitted and which carried over from it.
    """
    options = Options(seed, n_rep, n_starts, engine)
    last = json.loads(previous.read_text()) if previous and previous.exists() else None
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    names = tuple(a.NAME for a in ANALYSES)
    plan = policy.plan(
        names,
        policy.previous_fits(last),
        snapshot_id=snapshot_id,
        patients=views["analysis_patients"].height,
        now=now,
        force=force,
    )
    run = fit_all(views, options, only=tuple(plan.refit))
    as_of = _carry_over(run, plan, previous, last, options)
    patients = views["analysis_patients"].height
    for name, fitted in run.fitted.items():
        as_of[name] = policy.AsOf(
            snapshot_id, run_id, now.isoformat(), patients, tuple(fitted.tables)
        ).as_dict()
    convergence = {name: f.converged for name, f in run.fitted.items() if f.converged is not None}
    specification = run.specification | {
        "convergence": convergence,
        "fit_seconds": run.seconds,
        "failed": run.failed,
        "as_of": as_of,
        "refit_policy": policy.describe() | {"tonight": plan.reasons},
    }
    manifest = publish_results(
        out_dir,
        {name: t for f in run.fitted.values() for name, t in f.tables.items()},
        run_id=run_id,
        snapshot_id=snapshot_id,
        specification=specification,
        carried=run.carried_files,
    )
    study = summarise(run, manifest)
    study.as_of, study.carried = as_of, list(plan.carried)
    return study


def _carry_over(run: SuiteRun, plan: policy.Plan, previous, last, options: Options) -> dict:
    """The carried analyses' files from the last publication (republished byte for byte;
    the few the headline reads are loaded) with their specification entries; returns
    their ``as_of`` records."""
    as_of = {}
    for analysis in ANALYSES:
        if analysis.NAME not in plan.carried:
            continue
        kept = plan.carried[analysis.NAME]
        for table in kept.tables:
            run.carried_files[table] = previous.parent / f"{table}.parquet"
            if table in HEADLINE_TABLES:
                run.carried_tables[table] = pl.read_parquet(run.carried_files[table])
        for name in analysis.specification(options):
            run.specification[name] = last["specification"].get(name, {})
        as_of[analysis.NAME] = kept.as_dict()
    return as_of


def summarise(run: SuiteRun, manifest: Path) -> StudyResults:
    """Pick the headline numbers out of the published tables."""
    tables, empty = run.tables, pl.DataFrame()
    effect = tables["lmm_primary_effect_size"].row(0, named=True)
    test = tables.get("lmm_interaction_test", empty).head(1).to_dicts()
    keep = ("term", "estimate", "ci_low", "ci_high", "p_value", "lrt_chi2", "lrt_p_value")
    sf12 = {
        r["score"]: (r["baseline_mean"], r["one_year_mean"], r["p_value"])
        for r in tables.get("sf12_change", empty).iter_rows(named=True)
    }
    groups = tables.get("trajectory_groups", pl.DataFrame({"selected": [], "share": []}))
    effects = tables.get("mediation_effects", pl.DataFrame({"effect": [], "estimate": []}))
    chosen = (
        run.fitted["trajectory"].result.chosen
        if "trajectory" in run.fitted
        else _carried_groups(tables.get("trajectory_selection"))
    )
    return StudyResults(
        primary=run.fitted["primary"].result,
        effect_size={k: effect[k] for k in ("estimate", "ci_low", "ci_high")},
        interaction={k: test[0][k] for k in keep} if test else {},
        trajectory_groups=chosen,
        trajectory_shares=groups.filter(pl.col("selected"))["share"].to_list(),
        trajectory_status=run.fitted["trajectory"].result.status
        if "trajectory" in run.fitted
        else "",
        mediation={row["effect"]: row for row in effects.iter_rows(named=True)},
        sf12=sf12,
        fit_seconds=run.seconds,
        failed=run.failed,
        manifest=manifest,
        centre=centre_headline(run),
    )


def centre_headline(run: SuiteRun) -> dict:
    """The centre model's centre variance and singular flag (empty if it did not run)."""
    if "centre" not in run.fitted:
        return {}
    fit = run.fitted["centre"].result.fit
    variance = dict(fit.variance_components.select("component", "estimate").iter_rows())
    return {"centre_intercept_var": variance["centre_intercept_var"], "singular": fit.singular}


def _carried_groups(selection: pl.DataFrame | None) -> int:
    """The number of trajectory groups selected, from a carried-over selection table."""
    if selection is None or not selection.height:
        return 0
    chosen = selection.filter("selected")["n_groups"]  # none: not determined
    return int(chosen[0]) if chosen.len() else 0

"""Every model of the study, fitted on one snapshot's views and published together.

One call for the flow and the CLI: ``fit_and_publish_all(views, out_dir, ...)`` writes the
primary model's files (``lmm_primary_*``) and the secondary analyses' tidy parquet files
into ``out_dir``, with one ``manifest.json`` that lists every file and the specification
of every model (formula, estimation, contrast scaling, seed, selection rule).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from models import centre, descriptives, interaction, mediation, trajectory
from models.lmm import PrimaryResult, fit_primary_model
from models.primary import SPECIFICATION as PRIMARY_SPECIFICATION
from models.publish import publish_results

DEFAULT_SEED = 20230516

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


@dataclass
class StudyResults:
    """The headline numbers (for a console summary) and where the full results are.

    A secondary analysis that failed is absent (empty dict or list, 0 groups) and named
    in ``failed`` with its error.
    """

    primary: PrimaryResult  # as fit_and_publish_primary returns it (flows read effect_size)
    effect_size: dict  # primary: estimate, ci_low, ci_high
    interaction: dict  # month:depressed: estimate, ci_low, ci_high, p_value, lrt_chi2, lrt_p
    trajectory_groups: int  # number of groups selected
    trajectory_shares: list[float]  # their estimated shares, group 1 (lowest pain) first
    mediation: dict  # effect name -> estimate
    sf12: dict  # score -> (baseline mean, one-year mean, paired t-test p)
    fit_seconds: dict[str, float]
    failed: dict[str, str]  # step -> error, for secondary analyses that could not run
    manifest: Path


MODELS = {
    "lmm_primary": PRIMARY_SPECIFICATION,
    "lmm_interaction": {
        "formula": f"nprs ~ {interaction.FIXED}",
        "random_effects": "~month | patient_key (random intercept and slope, unstructured)",
        "estimation": "REML for coefficients and Wald 95% CI; ML fits for the LRT",
        "test": f"LRT (1 df) against nprs ~ {interaction.REDUCED}",
        "coding": "depressed = baseline HADS-D >= 8, True = 1; the row month:not_depressed "
        "is the same coefficient with HADS-D <= 7 coded 1 (the paper's sign)",
    },
    "lmm_centre": {
        "formula": "nprs ~ month",
        "random_effects": "centre intercept; patient intercept and month slope as "
        "independent variance components within centre",
        "estimation": "REML (statsmodels MixedLM, groups=centre_id, vc_formula)",
    },
    "trajectory": {
        "model": "group-based trajectory model (LCGA), normal outcome, common SD, "
        f"polynomial degree {trajectory.DEGREE} in month/12",
        "groups_tried": f"1-{trajectory.MAX_GROUPS}",
        "selection_rule": trajectory.SELECTION_RULE,
        "missing": "each patient's likelihood uses the visits observed",
        "fit_sample": f"all patients up to {trajectory.FIT_SAMPLE:,}; beyond, a seeded random "
        "sample of that many (BIC and CIs from it), posteriors and tables for every patient",
        "ci": "delta method, inverse observed information (numerical Hessian)",
    },
    "mediation": {
        "mediator_model": f"OLS {mediation.MEDIATOR_FORMULA}",
        "outcome_model": f"OLS {mediation.OUTCOME_FORMULA}",
        "exposure": f"total_dose_mg / {mediation.DOSE_UNIT_MG:g} (contrast 0 vs 1 = "
        f"+{mediation.DOSE_UNIT_MG:g} mg)",
        "missing": "complete cases (the outcome needs the month-12 NPRS)",
    },
    "sf12_change": {"test": "paired t-test, one-year minus baseline, complete pairs"},
    "hads_by_month": {"summary": "mean, SD, n of scored questionnaires per month"},
    "adverse_effects": {"summary": "events and patients affected; % of included patients"},
}


def specifications(seed: int, n_rep: int, n_starts: int) -> dict:
    """What each published model is, with this run's settings, for the manifest."""
    spec = {name: dict(entry) for name, entry in MODELS.items()}
    spec["trajectory"] |= {
        "estimation": f"EM, best of {n_starts} seeded random starts per number of groups",
        "seed": seed,
    }
    spec["mediation"] |= {
        "estimation": f"statsmodels Mediation, bootstrap, {n_rep} replicates, percentile CIs",
        "seed": seed,
    }
    return spec


@dataclass(frozen=True)
class Options:
    seed: int
    n_rep: int
    n_starts: int


def _primary(views: dict, _: Options):
    result = fit_primary_model(views["analysis_patient_months"])
    fit = result.fit
    n = {"n_patients": fit.n_groups, "n_observations": fit.n_observations}
    fixed = fit.fixed_effects.with_columns(
        model=pl.lit("lmm_primary"), **{k: pl.lit(v) for k, v in n.items()}
    )
    return result, {
        "lmm_primary_fixed_effects": fixed,
        "lmm_primary_variance_components": fit.variance_components,
        "lmm_primary_effect_size": result.effect_size,
    }


def _interaction(views: dict, _: Options):
    result = interaction.fit_interaction_model(views["analysis_patient_months"])
    fit = result.fit
    fixed = fit.fixed_effects.with_columns(
        n_patients=pl.lit(fit.n_groups), n_observations=pl.lit(fit.n_observations)
    )
    return result, {
        "lmm_interaction_fixed_effects": fixed,
        "lmm_interaction_variance_components": fit.variance_components,
        "lmm_interaction_test": result.test,
    }


def _centre(views: dict, _: Options):
    result = centre.fit_centre_model(views["analysis_patient_months"])
    fixed = result.fixed_effects.with_columns(
        n_patients=pl.lit(result.n_patients),
        n_centres=pl.lit(result.n_centres),
        n_observations=pl.lit(result.n_observations),
    )
    return result, {
        "lmm_centre_fixed_effects": fixed,
        "lmm_centre_variance_components": result.variance_components,
    }


def _trajectory(views: dict, options: Options):
    months = views["analysis_patient_months"]
    result = trajectory.fit_trajectories(months, seed=options.seed, n_starts=options.n_starts)
    return result, {
        "trajectory_selection": result.selection,
        "trajectory_groups": result.groups,
        "trajectory_curves": result.trajectories,
        "trajectory_membership": result.membership,
    }


def _mediation(views: dict, options: Options):
    patients = views["analysis_patients"]
    result = mediation.fit_mediation(patients, seed=options.seed, n_rep=options.n_rep)
    return result, {"mediation_effects": result.effects, "mediation_paths": result.paths}


def _descriptives(views: dict, _: Options):
    patients = views["analysis_patients"]
    tables = {
        "sf12_change": descriptives.sf12_change(patients),
        "hads_by_month": descriptives.hads_by_month(views["hads_scored"]),
        "adverse_effects": descriptives.adverse_effects(views["adverse_events"], patients),
    }
    return tables["sf12_change"], tables


STEPS = {
    "primary": _primary,
    "interaction": _interaction,
    "centre": _centre,
    "trajectory": _trajectory,
    "mediation": _mediation,
    "descriptives": _descriptives,
}


def fit_all(views: dict[str, pl.DataFrame], options: Options):
    """Run every step; a secondary analysis that fails is recorded, not fatal.

    The primary model raises as before (nothing is published without it); any other step
    that raises (e.g. no patient has reached month 12 yet) is left out of the published
    set and its error goes to the manifest, so one analysis never blocks the others.
    """
    results, tables, seconds, failed = {}, {}, {}, {}
    for name, step in STEPS.items():
        start = time.perf_counter()
        try:
            results[name], produced = step(views, options)
        except Exception as error:  # noqa: BLE001 - recorded in the manifest, see docstring
            if name == "primary":
                raise
            failed[name] = f"{type(error).__name__}: {error}"
            continue
        tables |= produced
        seconds[name] = round(time.perf_counter() - start, 2)
    return results, tables, seconds, failed


def fit_and_publish_all(
    views: dict[str, pl.DataFrame],
    out_dir: Path,
    *,
    run_id: str,
    snapshot_id: str,
    seed: int = DEFAULT_SEED,
    n_rep: int = 1000,
    n_starts: int = 20,
) -> StudyResults:
    """Fit the study's models on ``build_views`` output (+ ``adverse_events``), publish.

    ``n_rep`` (mediation bootstrap replicates) and ``n_starts`` (EM starts per number of
    trajectory groups) trade time for precision; tests lower them.
    """
    options = Options(seed, n_rep, n_starts)
    results, tables, seconds, failed = fit_all(views, options)
    spec = specifications(seed, n_rep, n_starts)
    primary = results["primary"].fit
    spec["lmm_primary"] |= {
        "n_patients": primary.n_groups,
        "n_observations": primary.n_observations,
        "log_likelihood": primary.log_likelihood,
    }
    spec |= {"convergence": convergence(results), "fit_seconds": seconds, "failed": failed}
    manifest = publish_results(
        out_dir, tables, run_id=run_id, snapshot_id=snapshot_id, specification=spec
    )
    return summarise(results, tables, seconds, failed, manifest)


def convergence(results: dict) -> dict[str, bool]:
    """Whether each fitted model's optimiser converged (EM: every number of groups)."""
    checks = {
        "primary": lambda r: r.fit.converged,
        "interaction": lambda r: bool(r.test["converged"][0]),
        "centre": lambda r: r.converged,
        "trajectory": lambda r: bool(r.selection["converged"].all()),
    }
    return {name: check(results[name]) for name, check in checks.items() if name in results}


def summarise(
    results: dict, tables: dict, seconds: dict, failed: dict, manifest: Path
) -> StudyResults:
    """Pick the headline numbers out of the published tables."""
    empty = pl.DataFrame()
    effect = tables["lmm_primary_effect_size"].row(0, named=True)
    test = tables.get("lmm_interaction_test", empty).head(1).to_dicts()
    keep = ("term", "estimate", "ci_low", "ci_high", "p_value", "lrt_chi2", "lrt_p_value")
    sf12 = {
        r["score"]: (r["baseline_mean"], r["one_year_mean"], r["p_value"])
        for r in tables.get("sf12_change", empty).iter_rows(named=True)
    }
    groups = tables.get("trajectory_groups", pl.DataFrame({"selected": [], "share": []}))
    effects = tables.get("mediation_effects", pl.DataFrame({"effect": [], "estimate": []}))
    return StudyResults(
        primary=results["primary"],
        effect_size={k: effect[k] for k in ("estimate", "ci_low", "ci_high")},
        interaction={k: test[0][k] for k in keep} if test else {},
        trajectory_groups=results["trajectory"].chosen if "trajectory" in results else 0,
        trajectory_shares=groups.filter(pl.col("selected"))["share"].to_list(),
        mediation=dict(effects.select("effect", "estimate").iter_rows()),
        sf12=sf12,
        fit_seconds=seconds,
        failed=failed,
        manifest=manifest,
    )

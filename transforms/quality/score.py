"""Scoring data-quality results: status from counts and thresholds, scorecard, trends.

A result keeps its raw counts (``n_checked``, ``n_violating``); its status is computed
here from thresholds, so any stored run can be re-scored (:func:`rescore`) without
running a check again. A check fails when the share of violating units exceeds its
percent threshold **or** their number exceeds its count threshold; with nothing to
check it is ``not_applicable`` (never passed); a check that raised is ``error``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import duckdb
import polars as pl

from schemas import expectations as ex

ALL_CENTRES = "ALL"
QUARANTINE_CHECK = "conf_quarantine_rate"  # rows affected: what a centre has to fix


@dataclass(frozen=True)
class Breach:
    """A failed check in a centre: what was observed against which threshold."""

    centre_id: str
    check_id: str
    category: str
    n_checked: int
    n_violating: int
    threshold_pct: float | None
    threshold_count: int | None
    observed: str | None = None

    def __str__(self) -> str:
        pct = 100 * self.n_violating / self.n_checked
        limits = [f"{self.threshold_pct:g}%"] if self.threshold_pct is not None else []
        limits += [str(self.threshold_count)] if self.threshold_count is not None else []
        note = f" ({self.observed})" if self.observed else ""
        return (
            f"{self.centre_id} {self.check_id}: {self.n_violating} of {self.n_checked} "
            f"({pct:.1f}%) > {' or '.join(limits)}{note}"
        )


def status_expr() -> pl.Expr:
    """passed / failed / not_applicable / error from counts and thresholds (percent OR count)."""
    n, bad = pl.col("n_checked"), pl.col("n_violating")
    pct = 100 * bad / n
    over_count = pl.col("threshold_count").is_not_null() & (bad > pl.col("threshold_count"))
    over_pct = pl.col("threshold_pct").is_not_null() & (pct > pl.col("threshold_pct"))
    return (
        pl.when(n.is_null() | bad.is_null())
        .then(pl.lit("error"))
        .when(n == 0)
        .then(pl.lit("not_applicable"))
        .when(over_count | over_pct)
        .then(pl.lit("failed"))
        .otherwise(pl.lit("passed"))
    )


def status(n_checked: int | None, n_violating: int | None, threshold: ex.Threshold) -> str:
    """The status of one result (the same rule as :func:`status_expr`)."""
    row = pl.DataFrame(
        [(n_checked, n_violating, threshold.pct, threshold.count)],
        schema={
            "n_checked": pl.Int64,
            "n_violating": pl.Int64,
            "threshold_pct": pl.Float64,
            "threshold_count": pl.Int64,
        },
        orient="row",
    )
    return row.select(status_expr()).item()


def score(
    results: pl.DataFrame, thresholds: Mapping[str, ex.Threshold] | None = None
) -> pl.DataFrame:
    """Apply thresholds (defaults, overridden per check id) and compute the status."""
    for check_id, limit in (thresholds or {}).items():
        this = pl.col("check_id") == check_id
        results = results.with_columns(
            threshold_pct=pl.when(this)
            .then(pl.lit(limit.pct, pl.Float64))
            .otherwise(pl.col("threshold_pct")),
            threshold_count=pl.when(this)
            .then(pl.lit(limit.count, pl.Int64))
            .otherwise(pl.col("threshold_count")),
        )
    return results.with_columns(
        pct_violating=pl.when(pl.col("n_checked") > 0).then(
            100 * pl.col("n_violating") / pl.col("n_checked")
        ),
        status=status_expr(),
    )


def rescore(
    con: duckdb.DuckDBPyConnection,
    thresholds: Mapping[str, ex.Threshold],
    *,
    run_id: str | None = None,
) -> pl.DataFrame:
    """Stored results (one run, or all) under new thresholds: nothing is re-run."""
    return score(load_results(con, run_id), thresholds)


def load_results(con: duckdb.DuckDBPyConnection, run_id: str | None = None) -> pl.DataFrame:
    """dq_results of one run (or of every run), in catalogue order."""
    where = "WHERE run_id = ?" if run_id else ""
    return con.sql(
        f"SELECT * FROM dq_results {where} ORDER BY run_seq, check_id, centre_id",
        params=[run_id] if run_id else None,
    ).pl()


def breaches_of(results: pl.DataFrame) -> list[Breach]:
    """Every failed check of every centre, worst share first."""
    failed = results.filter(pl.col("status") == "failed").sort(
        "pct_violating", "centre_id", "check_id", descending=[True, False, False]
    )
    return [
        Breach(
            r["centre_id"],
            r["check_id"],
            r["category"],
            r["n_checked"],
            r["n_violating"],
            r["threshold_pct"],
            r["threshold_count"],
            r["observed"],
        )
        for r in failed.iter_rows(named=True)
    ]


def strict_sum(column: str) -> pl.Expr:
    """The sum of a count column, or null when any count is null: a check that could
    not count in one part (an error) has no total either (its status is ``error``)."""
    return pl.when(pl.col(column).is_null().any()).then(None).otherwise(pl.col(column).sum())


def pooled(results: pl.DataFrame) -> pl.DataFrame:
    """All centres together: counts summed per check (and run), status recomputed."""
    keys = [c for c in ("run_id", "run_seq") if c in results.columns]
    summed = results.group_by(*keys, "check_id", maintain_order=True).agg(
        pl.col("category", "threshold_pct", "threshold_count").first(),
        n_checked=strict_sum("n_checked"),
        n_violating=strict_sum("n_violating"),
    )
    return summed.with_columns(centre_id=pl.lit(ALL_CENTRES), status=status_expr())


def _pass_rates(results: pl.DataFrame, by: list[str]) -> pl.DataFrame:
    applicable = pl.col("status") != "not_applicable"
    return (
        results.group_by(by)
        .agg(
            n_applicable=applicable.sum().cast(pl.Int64),
            n_passed=(pl.col("status") == "passed").sum().cast(pl.Int64),
            n_failed=(pl.col("status") == "failed").sum().cast(pl.Int64),
        )
        .with_columns(
            pct_passed=pl.when(pl.col("n_applicable") > 0).then(
                100 * pl.col("n_passed") / pl.col("n_applicable")
            )
        )
    )


def scorecard(results: pl.DataFrame) -> pl.DataFrame:
    """Per centre (and ALL): percent of applicable checks passed, per category and overall,
    and the share of its rows quarantined (checks count alike; rows say how much is
    affected), worst centre first."""
    every = pl.concat([results, pooled(results)], how="diagonal_relaxed")
    by_category = _pass_rates(every, ["centre_id", "category"])
    overall = _pass_rates(every, ["centre_id"])
    wide = by_category.pivot(on="category", index="centre_id", values="pct_passed")
    for category in ex.CATEGORIES:
        if category not in wide.columns:
            wide = wide.with_columns(pl.lit(None, pl.Float64).alias(category))
    card = wide.select("centre_id", *ex.CATEGORIES).join(
        overall.select("centre_id", overall="pct_passed", failed="n_failed"), on="centre_id"
    )
    quarantined = every.filter(check_id=QUARANTINE_CHECK).select(
        "centre_id",
        rows_quarantined_pct=pl.when(pl.col("n_checked") > 0).then(
            100 * pl.col("n_violating") / pl.col("n_checked")
        ),
    )
    card = card.join(quarantined, on="centre_id", how="left")
    order = pl.col("centre_id") == ALL_CENTRES
    return card.sort(  # worst first: checks failed, then the share of rows quarantined
        order, "failed", pl.col("rows_quarantined_pct").fill_null(0), "centre_id",
        descending=[True, True, True, False],
    )  # fmt: skip


def trend(
    con: duckdb.DuckDBPyConnection,
    *,
    last_runs: int = 10,
    thresholds: Mapping[str, ex.Threshold] | None = None,
) -> pl.DataFrame:
    """Percent of checks passed per run, centre (and ALL) and category, over the last runs."""
    results = con.sql(
        """SELECT r.* FROM dq_results r
           WHERE r.run_seq > (SELECT coalesce(max(run_seq), 0) FROM dq_runs) - ?""",
        params=[last_runs],
    ).pl()
    results = score(results, thresholds)
    every = pl.concat([results, pooled(results)], how="diagonal_relaxed")
    return _pass_rates(every, ["run_seq", "run_id", "centre_id", "category"]).sort(
        "run_seq", "centre_id", "category"
    )


def status_changes(con: duckdb.DuckDBPyConnection, run_id: str) -> pl.DataFrame:
    """Checks whose status changed since the previous run: new failures and resolved ones."""
    return con.sql(
        """WITH this AS (SELECT * FROM dq_results WHERE run_id = $run),
                prev AS (SELECT * FROM dq_results WHERE run_seq = (
                    SELECT max(run_seq) FROM dq_runs
                    WHERE run_seq < (SELECT run_seq FROM dq_runs WHERE run_id = $run)))
           SELECT this.centre_id, this.check_id, this.category,
                  prev.status AS previous_status, this.status,
                  prev.n_violating AS previous_violating, this.n_violating
           FROM this JOIN prev USING (check_id, centre_id)
           WHERE this.status IS DISTINCT FROM prev.status
           ORDER BY this.status = 'failed' DESC, this.centre_id, this.check_id""",
        params={"run": run_id},
    ).pl()

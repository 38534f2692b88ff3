"""What a data manager acts on first: centres needing action, worst first, and each
breach marked new, persisting (for how many nights) or resolved.

Quiet nights stay quiet: a breach already reported is summarised in one line with its
age, not repeated; only new breaches are named one by one (``night_lines``).
"""

from __future__ import annotations

import duckdb
import polars as pl

from transforms.quality.score import ALL_CENTRES, pooled

AGE_WINDOW = 400  # quality runs looked back over (more than a year of nights)


def breach_ages(con: duckdb.DuckDBPyConnection, run_id: str) -> pl.DataFrame:
    """Each breach of ``run_id`` (the cohort's, ALL, included): for how many consecutive
    quality runs it has failed, and since when."""
    results = con.sql(
        """WITH this AS (SELECT run_seq FROM dq_runs WHERE run_id = $run)
           SELECT d.*, k.checked_at FROM dq_results d JOIN dq_runs k USING (run_id, run_seq)
           WHERE d.run_seq <= (SELECT run_seq FROM this)
             AND d.run_seq > (SELECT run_seq FROM this) - $window""",
        params={"run": run_id, "window": AGE_WINDOW},
    ).pl()
    if results.is_empty():
        return pl.DataFrame(
            schema={"centre_id": pl.String, "check_id": pl.String, "nights_failing": pl.Int64}
        )
    when = results.group_by("run_seq").agg(pl.col("checked_at").first())
    every = pl.concat([results, pooled(results).join(when, on="run_seq")], how="diagonal_relaxed")
    failed = pl.col("status") == "failed"
    last = every.group_by("centre_id", "check_id").agg(
        now=failed.sort_by("run_seq").last(),
        last_pass=pl.col("run_seq").filter(~failed).max().fill_null(0),
    )
    streak = every.join(last.filter("now"), on=["centre_id", "check_id"]).filter(
        failed & (pl.col("run_seq") > pl.col("last_pass"))
    )
    return streak.group_by("centre_id", "check_id").agg(
        nights_failing=pl.len().cast(pl.Int64), failing_since=pl.col("checked_at").min()
    )


def breach_table(results: pl.DataFrame, ages: pl.DataFrame) -> pl.DataFrame:
    """Every breach, the cohort's (ALL) included, with its age: new or persisting."""
    every = pl.concat([results, pooled(results)], how="diagonal_relaxed").with_columns(
        unit=pl.col("unit").drop_nulls().first().over("check_id"),
        pct_violating=pl.coalesce(
            "pct_violating", 100 * pl.col("n_violating") / pl.col("n_checked")
        ),
    )
    failed = every.filter(pl.col("status") == "failed")
    return (
        failed.join(ages, on=["centre_id", "check_id"], how="left")
        .with_columns(
            nights_failing=pl.col("nights_failing").fill_null(1),
            since=pl.when(pl.col("nights_failing").fill_null(1) > 1)
            .then(pl.format("persisting, {} nights", pl.col("nights_failing")))
            .otherwise(pl.lit("new")),
        )
        .sort(
            pl.col("centre_id") == ALL_CENTRES,
            "centre_id",
            "check_id",
            descending=[True, False, False],
        )
    )


def centres_needing_action(
    lifecycle: pl.DataFrame, breaches: pl.DataFrame, changes: pl.DataFrame
) -> pl.DataFrame:
    """Per centre with anything open: rows to fix, queries new and closed tonight,
    escalated, the oldest open query, breaches new / persisting / resolved; worst first."""
    per_centre = (
        breaches.filter(pl.col("centre_id") != ALL_CENTRES)
        .group_by("centre_id")
        .agg(
            breaches_new=(pl.col("since") == "new").sum().cast(pl.Int64),
            breaches_persisting=(pl.col("since") != "new").sum().cast(pl.Int64),
        )
    )
    resolved = (
        changes.filter((pl.col("previous_status") == "failed") & (pl.col("status") != "failed"))
        .group_by("centre_id")
        .agg(breaches_resolved=pl.len().cast(pl.Int64))
    )
    table = (
        lifecycle.join(per_centre, on="centre_id", how="full", coalesce=True)
        .join(resolved, on="centre_id", how="full", coalesce=True)
        .fill_null(strategy="zero")
        .with_columns(
            oldest_open=pl.col("oldest_open").dt.date()
            if "oldest_open" in lifecycle.columns
            else None
        )
    )
    needing = table.filter(
        (pl.col("open_to_fix") + pl.col("open_waiting") + pl.col("breaches_new")
         + pl.col("breaches_persisting")) > 0
    )  # fmt: skip
    return needing.sort(
        "escalated", "open_to_fix", "breaches_new", "breaches_persisting", "centre_id",
        descending=[True, True, True, True, False],
    )  # fmt: skip


def night_lines(breaches: pl.DataFrame, lifecycle: pl.DataFrame) -> list[str]:
    """A night's data-quality news: new breaches one by one, the rest in one line each."""
    new = breaches.filter(pl.col("since") == "new")
    old = breaches.filter(pl.col("since") != "new").sort("nights_failing", descending=True)
    lines = [f"NEW {_breach_text(row)}" for row in new.iter_rows(named=True)]
    if new.is_empty():
        lines.append("no new breaches")
    if old.height:
        oldest = old.row(0, named=True)
        lines.append(
            f"{old.height} breaches persisting (oldest: {oldest['centre_id']} "
            f"{oldest['check_id']}, {oldest['nights_failing']} nights)"
        )
    totals = lifecycle.select(pl.exclude("centre_id", "oldest_open")).sum()
    if lifecycle.height:
        t = totals.row(0, named=True)
        lines.append(
            f"queries: {t['open_to_fix']} to fix, {t['open_waiting']} waiting "
            f"({t['new_tonight']} new, {t['closed_tonight']} closed tonight, "
            f"{t['escalated']} escalated)"
        )
    return lines


def _breach_text(row: dict) -> str:
    limits = [f"{row['threshold_pct']:g}%"] if row.get("threshold_pct") is not None else []
    limits += [str(row["threshold_count"])] if row.get("threshold_count") is not None else []
    pct = 100 * row["n_violating"] / row["n_checked"] if row["n_checked"] else 0.0
    return (
        f"{row['centre_id']} {row['check_id']}: {row['n_violating']} of {row['n_checked']} "
        f"({pct:.1f}%) > {' or '.join(limits)}"
    )

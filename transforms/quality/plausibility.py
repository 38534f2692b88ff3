"""Plausibility and timeliness checks computed in DuckDB and polars, per centre.

Same contract as ``transforms/quality/checks.py``: each function returns an
:class:`~transforms.quality.checks.Outcome` (per-centre counts and queries).
"""

from __future__ import annotations

import duckdb
import polars as pl

from schemas import expectations as ex
from schemas.forms import DAYS_PER_MONTH
from transforms.quality.checks import (
    CheckContext,
    Outcome,
    make_outcome,
    per_centre,
    units_check,
)
from transforms.warehouse.ddl import QUALITY_MOMENTS_DDL

# --- plausibility ----------------------------------------------------------------------


def nprs_jump(con: duckdb.DuckDBPyConnection, ctx: CheckContext) -> Outcome:
    counts, rows = units_check(
        con,
        """SELECT * FROM (
               SELECT centre_id, patient_key, month, nprs,
                      lag(nprs) OVER w AS previous, lag(month) OVER w AS previous_month
               FROM follow_ups WINDOW w AS (PARTITION BY patient_key ORDER BY month))
           WHERE previous IS NOT NULL""",
        f"abs(nprs - previous) >= {ex.NPRS_JUMP}",
    )
    queries = rows.select(
        "centre_id",
        "patient_key",
        "month",
        field=pl.lit("nprs"),
        problem=pl.lit(f"NPRS changed by {ex.NPRS_JUMP} points or more since the last call"),
        value=pl.format(
            "{} (month {}) -> {} (month {})", "previous", "previous_month", "nprs", "month"
        ),
    )
    return make_outcome("plau_nprs_jump", counts, queries)


def call_timing(con: duckdb.DuckDBPyConnection, ctx: CheckContext) -> Outcome:
    counts, rows = units_check(
        con,
        f"""SELECT f.centre_id, f.patient_key, f.month, f.call_date,
                   date_diff('day', p.inclusion_date, f.call_date)
                     - round(f.month * {DAYS_PER_MONTH}) AS off_days
            FROM follow_ups f JOIN patients p USING (patient_key)
            WHERE f.call_date IS NOT NULL""",
        f"abs(off_days) > {ex.CALL_TOLERANCE_DAYS}",
    )
    queries = rows.select(
        "centre_id",
        "patient_key",
        "month",
        field=pl.lit("call_date"),
        problem=pl.format("call {} days off inclusion + month", pl.col("off_days").cast(pl.Int64)),
        value=pl.col("call_date").cast(pl.String),
    )
    return make_outcome("plau_call_timing", counts, queries)


def _centre_vs_others(
    con: duckdb.DuckDBPyConnection, sql: str, score: str, ctx: CheckContext
) -> pl.DataFrame:
    """Per centre: its mean of ``score`` against the other centres' mean and SD.

    From per-centre moments (count, mean, sum of squared deviations: DuckDB's Welford
    sums, stable) combined exactly, the others' as all centres' minus the centre's, on
    deviations from the overall mean (against cancellation). The moments are kept per
    centre (``dq_centre_moments``): a run that re-checks some centres (``ctx.scope``)
    recomputes theirs and reads the others' as they were when last computed.
    """
    moments = _moments(con, sql, score, ctx.scope)
    schema = {"centre_id": pl.String, "field": pl.String, "bad": pl.Boolean, "note": pl.String}
    if moments.is_empty():
        return pl.DataFrame(schema=schema)
    n, mean, m2 = (moments[c].to_numpy().astype(float) for c in ("n", "mean", "m2"))
    total = n.sum()
    centre = float((n * mean).sum() / total)
    d = mean - centre
    sum_d, sum_d2, sum_m2 = (n * d).sum(), (n * d * d).sum(), m2.sum()
    out = []
    for i, name in enumerate(moments["centre_id"].to_list()):
        rest_n = total - n[i]
        if n[i] < ex.DISTRIBUTION_MIN_N or rest_n < 2:
            continue
        rest_mean = (sum_d - n[i] * d[i]) / rest_n  # deviation of the others' mean
        rest_m2 = sum_m2 - m2[i] + sum_d2 - n[i] * d[i] ** 2 - rest_n * rest_mean**2
        rest_var = rest_m2 / (rest_n - 1)
        if rest_var <= 1e-12 * (1 + rest_mean**2):  # the others all alike: no SD to scale by
            continue
        own, others = mean[i], rest_mean + centre
        smd = (own - others) / rest_var**0.5
        note = f"{score} {own:.1f} vs {others:.1f} (SMD {smd:+.2f})"
        out.append((name, score, bool(abs(smd) >= ex.DISTRIBUTION_SMD), note))
    return pl.DataFrame(out, schema=schema, orient="row")


def _moments(con, sql: str, score: str, scope: tuple[str, ...] | None) -> pl.DataFrame:
    """Per centre n, mean, m2 of ``score``: computed for the centres visible (all, or the
    ``scope`` re-checked), stored, and all centres' returned in centre order."""
    fresh = con.sql(
        f"""SELECT '{score}' AS score, centre_id, count(*) AS n, avg(x) AS mean,
                   coalesce(var_pop(x), 0) * count(*) AS m2
            FROM (SELECT centre_id, {score} AS x FROM ({sql}) WHERE {score} IS NOT NULL)
            GROUP BY centre_id"""
    ).pl()
    con.execute(QUALITY_MOMENTS_DDL)
    con.register("dq_fresh_moments", fresh)
    try:
        if scope is None:
            con.execute("DELETE FROM dq_centre_moments WHERE score = ?", [score])
        else:
            con.execute(
                "DELETE FROM dq_centre_moments WHERE score = ? AND list_contains(?, centre_id)",
                [score, list(scope)],
            )
        con.execute("INSERT INTO dq_centre_moments BY NAME SELECT * FROM dq_fresh_moments")
    finally:
        con.unregister("dq_fresh_moments")
    return con.sql(
        "SELECT centre_id, n, mean, m2 FROM dq_centre_moments WHERE score = ? ORDER BY centre_id",
        params=[score],
    ).pl()


def _distribution(
    con, ctx: CheckContext, check_id: str, sql: str, scores: tuple[str, ...]
) -> Outcome:
    compared = pl.concat([_centre_vs_others(con, sql, s, ctx) for s in scores])
    counts = compared.group_by("centre_id").agg(
        n_checked=pl.len(),
        n_violating=pl.col("bad").sum().cast(pl.Int64),
        observed=pl.col("note").sort().str.join("; "),
    )
    queries = compared.filter("bad").select(
        "centre_id",
        month=pl.lit(0),
        field="field",
        problem=pl.lit("baseline mean far from the other centres' (coding or scoring?)"),
        value="note",
    )
    return make_outcome(check_id, counts, queries)


def hads_distribution(con: duckdb.DuckDBPyConnection, ctx: CheckContext) -> Outcome:
    sql = "SELECT centre_id, hads_a, hads_d FROM hads_scored WHERE month = 0"
    return _distribution(con, ctx, "plau_hads_distribution", sql, ("hads_a", "hads_d"))


def sf12_distribution(con: duckdb.DuckDBPyConnection, ctx: CheckContext) -> Outcome:
    sql = "SELECT centre_id, pcs12, mcs12 FROM sf12_scored WHERE month = 0"
    return _distribution(con, ctx, "plau_sf12_distribution", sql, ("pcs12", "mcs12"))


def nprs_distribution(con: duckdb.DuckDBPyConnection, ctx: CheckContext) -> Outcome:
    sql = "SELECT centre_id, nprs FROM follow_ups WHERE month = 0"
    return _distribution(con, ctx, "plau_nprs_distribution", sql, ("nprs",))


# --- timeliness ------------------------------------------------------------------------


def last_export(con: duckdb.DuckDBPyConnection, ctx: CheckContext) -> Outcome:
    """A centre is late when its last file (any status) is older than the cadence."""
    last = con.sql(
        "SELECT centre_id, max(ingested_at) AS last_file FROM ingested_files GROUP BY centre_id"
    ).pl()
    never = [c for c in ctx.expected_centres if c not in set(last["centre_id"])]
    last = pl.concat(
        [last, pl.DataFrame({"centre_id": never, "last_file": [None] * len(never)})],
        how="diagonal_relaxed",
    ).with_columns(days=(pl.lit(ctx.now) - pl.col("last_file")).dt.total_days())
    rows = last.with_columns(
        bad=pl.col("days").is_null() | (pl.col("days") > ctx.cadence_days),
        observed=pl.when(pl.col("days").is_null())
        .then(pl.lit("no file ever received"))
        .otherwise(pl.format("{} days since the last file", "days")),
    )
    counts = per_centre(rows).join(rows.select("centre_id", "observed"), on="centre_id")
    queries = rows.filter("bad").select(
        "centre_id",
        field=pl.lit("export"),
        problem=pl.format("no export received for longer than {} days", pl.lit(ctx.cadence_days)),
        value="observed",
    )
    return make_outcome("time_last_export", counts, queries)

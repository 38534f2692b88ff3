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


def _centre_vs_others(con: duckdb.DuckDBPyConnection, sql: str, score: str) -> pl.DataFrame:
    """Per centre: its mean of ``score`` against the other centres' mean and SD.

    From per-centre sums computed in DuckDB (the others' sums are the totals minus the
    centre's; values are centred on the overall mean first, against cancellation): one
    pass, instead of filtering every value once per centre.
    """
    sums = con.sql(
        f"""WITH v AS (SELECT centre_id, {score} AS x FROM ({sql}) WHERE {score} IS NOT NULL),
                 c AS (SELECT avg(x) AS centre FROM v)
            SELECT centre_id, count(*) AS n, sum(x - centre) AS s,
                   sum((x - centre) * (x - centre)) AS ss, any_value(centre) AS shift
            FROM v, c GROUP BY centre_id ORDER BY centre_id"""
    ).pl()
    schema = {"centre_id": pl.String, "field": pl.String, "bad": pl.Boolean, "note": pl.String}
    if sums.is_empty():
        return pl.DataFrame(schema=schema)
    total_n, total_s, total_ss = sums["n"].sum(), sums["s"].sum(), sums["ss"].sum()
    out = []
    for centre, n, s, ss, shift in sums.iter_rows():
        rest_n = total_n - n
        if n < ex.DISTRIBUTION_MIN_N or rest_n < 2:
            continue
        rest_mean = (total_s - s) / rest_n
        rest_var = (total_ss - ss - rest_n * rest_mean**2) / (rest_n - 1)
        if rest_var <= 1e-12 * (1 + rest_mean**2):  # the others all alike: no SD to scale by
            continue
        own, others = s / n + shift, rest_mean + shift
        smd = (own - others) / rest_var**0.5
        note = f"{score} {own:.1f} vs {others:.1f} (SMD {smd:+.2f})"
        out.append((centre, score, abs(smd) >= ex.DISTRIBUTION_SMD, note))
    return pl.DataFrame(out, schema=schema, orient="row")


def _distribution(con, check_id: str, sql: str, scores: tuple[str, ...]) -> Outcome:
    compared = pl.concat([_centre_vs_others(con, sql, s) for s in scores])
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
    return _distribution(con, "plau_hads_distribution", sql, ("hads_a", "hads_d"))


def sf12_distribution(con: duckdb.DuckDBPyConnection, ctx: CheckContext) -> Outcome:
    sql = "SELECT centre_id, pcs12, mcs12 FROM sf12_scored WHERE month = 0"
    return _distribution(con, "plau_sf12_distribution", sql, ("pcs12", "mcs12"))


def nprs_distribution(con: duckdb.DuckDBPyConnection, ctx: CheckContext) -> Outcome:
    sql = "SELECT centre_id, nprs FROM follow_ups WHERE month = 0"
    return _distribution(con, "plau_nprs_distribution", sql, ("nprs",))


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

"""The data-quality checks computed in DuckDB and polars, per centre.

Each check function reads the warehouse and returns an :class:`Outcome`: per-centre
counts (``n_checked``, ``n_violating``, an ``observed`` note) and the queries a data
manager can send back (patient pseudonym, month, field, problem, value). The catalogue
(ids, categories, thresholds) is ``schemas/expectations.py``; statuses are computed
later from the counts, so that they can be re-scored against other thresholds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import duckdb
import polars as pl

from schemas import expectations as ex
from schemas.forms import DAYS_PER_MONTH, FORMS

COUNTS_SCHEMA = pl.Schema(
    {
        "check_id": pl.String,
        "centre_id": pl.String,
        "n_checked": pl.Int64,
        "n_violating": pl.Int64,
        "observed": pl.String,
    }
)
EVERY_CENTRE = "*"  # a count row for every centre: a check that could not run at all
QUERY_SCHEMA = pl.Schema(
    {
        "check_id": pl.String,
        "centre_id": pl.String,
        "patient_key": pl.String,
        "month": pl.Int64,
        "field": pl.String,
        "problem": pl.String,
        "value": pl.String,
    }
)


@dataclass
class Outcome:
    """Per-centre counts and row-level queries of one or more checks."""

    counts: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=COUNTS_SCHEMA))
    queries: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=QUERY_SCHEMA))
    ran: tuple[str, ...] = ()  # the checks computed (a check may have no count row at all)
    gx_digests: pl.DataFrame | None = None  # what the GX results computed were computed on


@dataclass(frozen=True)
class CheckContext:
    """What the checks need besides the warehouse: the date, the expected cadence."""

    now: dt.datetime  # naive UTC, as ingested_files.ingested_at
    cadence_days: int = ex.EXPORT_CADENCE_DAYS
    expected_centres: tuple[str, ...] = ()
    scope: tuple[str, ...] | None = None  # centres re-checked (None: all; only_centres)

    @property
    def today(self) -> dt.date:
        return self.now.date()


# The tables the per-centre checks read (by their centre_id): restricted to the centres
# re-checked by ``only_centres``; ingested_files is not (its checks are cheap: every run).
CENTRE_TABLES = (
    *(f.table for f in FORMS.values()),
    "hads_scored",
    "sf12_scored",
    "ketamine_doses",
    "analysis_patient_months",
    "analysis_patients",
)


@contextmanager
def only_centres(con: duckdb.DuckDBPyConnection, centres: tuple[str, ...]) -> Iterator[None]:
    """Inside the block, the centre tables show only ``centres``' rows to every check.

    Temporary views named as the tables hide them (DuckDB resolves ``temp`` first) and
    are dropped on the way out; they exist only in this connection, so nothing else, and
    no other process, ever sees them. Checks stay plain SQL over "the tables".
    """
    catalog = con.execute("SELECT current_database()").fetchall()[0][0]
    present = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    tables = [t for t in CENTRE_TABLES if t in present]
    con.register(
        "dq_scope", pl.DataFrame({"centre_id": list(centres)}, schema={"centre_id": pl.String})
    )
    try:
        for table in tables:  # names from the schemas, not from input
            con.execute(
                f'CREATE OR REPLACE TEMP VIEW {table} AS SELECT * FROM "{catalog}".main.{table} '
                "WHERE centre_id IN (SELECT centre_id FROM dq_scope)"
            )
        yield
    finally:
        for table in tables:
            con.execute(f"DROP VIEW IF EXISTS temp.{table}")
        con.unregister("dq_scope")


def make_outcome(
    check_id: str, counts: pl.DataFrame, queries: pl.DataFrame | None = None
) -> Outcome:
    """Typed frames for one check (counts: centre_id, n_checked, n_violating[, observed])."""
    counts = counts.with_columns(check_id=pl.lit(check_id))
    if "observed" not in counts.columns:
        counts = counts.with_columns(observed=pl.lit(None, pl.String))
    out = Outcome(counts=counts.select(list(COUNTS_SCHEMA)).cast(COUNTS_SCHEMA), ran=(check_id,))
    if queries is not None and queries.height:
        queries = queries.with_columns(check_id=pl.lit(check_id))
        for name, dtype in QUERY_SCHEMA.items():
            if name not in queries.columns:
                queries = queries.with_columns(pl.lit(None, dtype).alias(name))
        out.queries = queries.select(list(QUERY_SCHEMA)).cast(QUERY_SCHEMA)
    return out


def per_centre(rows: pl.DataFrame, violating: str = "bad") -> pl.DataFrame:
    """Counts per centre from one row per checked unit with a boolean ``violating``."""
    return rows.group_by("centre_id").agg(
        n_checked=pl.len(), n_violating=pl.col(violating).sum().cast(pl.Int64)
    )


def units_check(
    con: duckdb.DuckDBPyConnection, units: str, bad: str, params: dict | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Counts per centre of the units (rows of the SQL ``units``, with ``centre_id``) and
    the violating ones (where the SQL condition ``bad`` holds), computed in DuckDB.

    Only the counts and the violating units leave DuckDB: a million patients' rows are
    never copied into frames (before: 16 million rows, 4.4 GB, for one check).
    """
    counts = con.sql(
        f"""WITH units AS ({units})
            SELECT centre_id, count(*) AS n_checked,
                   count(*) FILTER (WHERE {bad}) AS n_violating
            FROM units GROUP BY centre_id""",
        params=params,
    ).pl()
    violating = con.sql(f"WITH units AS ({units}) SELECT * FROM units WHERE {bad}", params=params)
    return counts, violating.pl()


# --- conformance ---------------------------------------------------------------------


def hads_sum(con: duckdb.DuckDBPyConnection, ctx: CheckContext) -> Outcome:
    """A fully answered subscale must score the sum of its items (the half rule aside)."""
    parts = []
    for scale in ("a", "d"):
        items = [f"hads_{scale}{i}" for i in range(1, 8)]
        parts.append(
            f"""SELECT centre_id, patient_key, month, 'hads_{scale}' AS field,
                       hads_{scale} AS score, {" + ".join(items)} AS total
                FROM hads_scored WHERE {" AND ".join(f"{i} IS NOT NULL" for i in items)}"""
        )
    counts, rows = units_check(con, " UNION ALL ".join(parts), "abs(score - total) > 1e-9")
    queries = rows.select(
        "centre_id",
        "patient_key",
        "month",
        "field",
        problem=pl.lit("score differs from the sum of its 7 items"),
        value=pl.format("score {} vs sum {}", "score", "total"),
    )
    return make_outcome("conf_hads_sum", counts, queries)


def _child_rows() -> str:
    """SQL: every row of every form but inclusion, with its patient's centre (null:
    unknown)."""
    parts = [
        f"""SELECT '{f.table}' AS form_table, t.centre_id, t.patient_key,
                   {"t.month" if "month" in f.key else "NULL"} AS month,
                   p.centre_id AS patient_centre, p.patient_key IS NULL AS unknown
            FROM {f.table} t LEFT JOIN patients p USING (patient_key)"""
        for f in FORMS.values()
        if f.table != "patients"
    ]
    return " UNION ALL ".join(parts)


def known_patient(con: duckdb.DuckDBPyConnection, ctx: CheckContext) -> Outcome:
    counts, rows = units_check(con, _child_rows(), "unknown")
    queries = rows.select(
        "centre_id",
        "patient_key",
        "month",
        field=pl.col("form_table") + ".patient_key",
        problem=pl.lit("patient not included (no inclusion form)"),
    )
    return make_outcome("conf_known_patient", counts, queries)


def same_centre(con: duckdb.DuckDBPyConnection, ctx: CheckContext) -> Outcome:
    known = f"SELECT * FROM ({_child_rows()}) WHERE NOT unknown"
    counts, rows = units_check(con, known, "centre_id <> patient_centre")
    queries = rows.select(
        "centre_id",
        "patient_key",
        "month",
        field=pl.col("form_table") + ".centre_id",
        problem=pl.lit("row sent by another centre than the patient's"),
        value="patient_centre",
    )
    return make_outcome("conf_same_centre", counts, queries)


def quarantine_rate(con: duckdb.DuckDBPyConnection, ctx: CheckContext) -> Outcome:
    counts = con.sql(
        """SELECT centre_id, coalesce(sum(rows_read), 0) AS n_checked,
                  coalesce(sum(rows_quarantined), 0) AS n_violating
           FROM ingested_files WHERE status = 'loaded' GROUP BY centre_id"""
    ).pl()
    return make_outcome("conf_quarantine_rate", counts)


def files_rejected(con: duckdb.DuckDBPyConnection, ctx: CheckContext) -> Outcome:
    files = con.sql(
        """SELECT centre_id, file_name, error, status = 'rejected' AS bad
           FROM ingested_files"""
    ).pl()
    queries = files.filter("bad").select(
        "centre_id",
        field=pl.lit("file"),
        problem=pl.lit("file could not be read: ") + pl.col("error").fill_null(""),
        value="file_name",
    )
    return make_outcome("conf_files_rejected", per_centre(files), queries)


# --- completeness ----------------------------------------------------------------------


def expected_calls(today: dt.date, *, with_dropout: bool = False) -> tuple[str, dict]:
    """SQL (and its parameters): one row per expected patient-month, and whether its call
    was received.

    A patient is expected at month m when m <= the months since inclusion (today) and,
    unless ``with_dropout``, the patient has not dropped out at m: a call exists at m or
    later (month 0 always). With ``with_dropout`` every month due is expected, so that loss
    to follow-up shows (the heatmap; the retention check).
    """
    later_call = "TRUE" if with_dropout else "m.month <= coalesce(l.last_month, 0)"
    sql = f"""WITH last AS (SELECT patient_key, max(month) AS last_month
                          FROM follow_ups GROUP BY patient_key)
            SELECT p.centre_id, p.patient_key, m.month, f.patient_key IS NOT NULL AS received
            FROM patients p
            LEFT JOIN last l USING (patient_key)
            CROSS JOIN (SELECT range AS month FROM range(0, 13)) m
            LEFT JOIN follow_ups f ON f.patient_key = p.patient_key AND f.month = m.month
            WHERE {later_call}
              AND m.month <= floor(date_diff('day', p.inclusion_date, $today) / {DAYS_PER_MONTH})"""
    return sql, {"today": today}


def monthly_completeness(con: duckdb.DuckDBPyConnection, today: dt.date) -> pl.DataFrame:
    """Calls due and received per centre and follow-up month (the heatmap's data): every
    month due is expected, so that loss to follow-up shows as missing calls."""
    sql, params = expected_calls(today, with_dropout=True)
    return con.sql(
        f"""SELECT centre_id, month, count(*) AS expected, count(*) FILTER (received) AS received
            FROM ({sql}) GROUP BY centre_id, month ORDER BY centre_id, month""",
        params=params,
    ).pl()


def monthly_calls(con: duckdb.DuckDBPyConnection, ctx: CheckContext) -> Outcome:
    sql, params = expected_calls(ctx.today)
    counts, rows = units_check(con, sql, "NOT received", params)
    queries = rows.sort("centre_id", "patient_key", "month").select(
        "centre_id",
        "patient_key",
        "month",
        field=pl.lit("nprs"),
        problem=pl.lit("monthly call missing (the patient has a later call)"),
    )
    return make_outcome("comp_monthly_calls", counts, queries)


def retention_month12(con: duckdb.DuckDBPyConnection, ctx: CheckContext) -> Outcome:
    """Patients due at month 12 without a month-12 pain score: lost for the endpoint."""
    units = f"""SELECT p.centre_id, p.patient_key, NOT EXISTS (
                    SELECT 1 FROM follow_ups f WHERE f.patient_key = p.patient_key
                    AND f.month = 12 AND f.nprs IS NOT NULL) AS lost
                FROM patients p
                WHERE date_diff('day', p.inclusion_date, $today) / {DAYS_PER_MONTH} >= 12"""
    counts, rows = units_check(con, units, "lost", {"today": ctx.today})
    queries = rows.select(
        "centre_id",
        "patient_key",
        month=pl.lit(12),
        field=pl.lit("nprs"),
        problem=pl.lit("no month-12 pain score (the one-year endpoint): call the patient"),
    )
    return make_outcome("comp_retention_month12", counts, queries)


def retention(con: duckdb.DuckDBPyConnection, today: dt.date) -> pl.DataFrame:
    """Per centre (and ALL): of the patients due at months 3, 6, 12, the share with a pain
    score that month (loss to follow-up, the study's main threat)."""
    per_month = con.sql(
        f"""SELECT p.centre_id, m.month, count(*) AS due, count(f.patient_key) AS kept
            FROM patients p CROSS JOIN (VALUES (3), (6), (12)) m(month)
            LEFT JOIN follow_ups f ON f.patient_key = p.patient_key AND f.month = m.month
                                   AND f.nprs IS NOT NULL
            WHERE m.month <= floor(date_diff('day', p.inclusion_date, $today) / {DAYS_PER_MONTH})
            GROUP BY ALL""",
        params={"today": today},
    ).pl()
    cohort = per_month.group_by("month").agg(pl.col("due", "kept").sum(), centre_id=pl.lit("ALL"))
    every = pl.concat([per_month, cohort.select(per_month.columns)])
    return (
        every.with_columns(pct=(100 * pl.col("kept") / pl.col("due")).round(1))
        .pivot(on="month", index="centre_id", values=["due", "pct"], sort_columns=True)
        .sort(pl.col("centre_id") == "ALL", "centre_id", descending=[True, False])
    )


def _patients_missing(con, check_id: str, condition: str, month: int | None, what: str) -> Outcome:
    """Per patient: violating when ``condition`` (SQL over patient p) is false."""
    units = f"SELECT p.centre_id, p.patient_key, NOT ({condition}) AS missing FROM patients p"
    counts, rows = units_check(con, units, "missing")
    queries = rows.select(
        "centre_id",
        "patient_key",
        month=pl.lit(month),
        field=pl.lit(what.split()[0]),
        problem=pl.lit(what),
    )
    return make_outcome(check_id, counts, queries)


def _exists(table: str, month: int, *not_null: str) -> str:
    filled = "".join(f" AND t.{c} IS NOT NULL" for c in not_null)
    return (
        f"EXISTS (SELECT 1 FROM {table} t "
        f"WHERE t.patient_key = p.patient_key AND t.month = {month}{filled})"
    )


def hads_baseline(con: duckdb.DuckDBPyConnection, ctx: CheckContext) -> Outcome:
    return _patients_missing(
        con,
        "comp_hads_baseline",
        _exists("hads_scored", 0, "hads_d"),
        0,
        "hads_d baseline missing or unscorable (fewer than 4 of 7 depression items)",
    )


def sf12_baseline(con: duckdb.DuckDBPyConnection, ctx: CheckContext) -> Outcome:
    return _patients_missing(
        con,
        "comp_sf12_baseline",
        _exists("sf12_scored", 0, "pcs12", "mcs12"),
        0,
        "sf12 baseline missing or unscorable (an item is missing)",
    )


def ketamine_given(con: duckdb.DuckDBPyConnection, ctx: CheckContext) -> Outcome:
    condition = (
        "EXISTS (SELECT 1 FROM ketamine_administrations k WHERE k.patient_key = p.patient_key)"
    )
    return _patients_missing(
        con, "comp_ketamine_given", condition, None, "ketamine: no administration recorded"
    )


def one_year_questionnaires(con: duckdb.DuckDBPyConnection, ctx: CheckContext) -> Outcome:
    counts, rows = units_check(
        con,
        f"""SELECT p.centre_id, p.patient_key,
                   NOT {_exists("hads_scored", 12, "hads_d")} AS no_hads,
                   NOT {_exists("sf12_scored", 12, "pcs12", "mcs12")} AS no_sf12
            FROM patients p WHERE {_exists("follow_ups", 12)}""",
        "no_hads OR no_sf12",
    )
    queries = pl.concat(
        [
            rows.filter(flag).select(
                "centre_id",
                "patient_key",
                month=pl.lit(12),
                field=pl.lit(name),
                problem=pl.lit(f"{name} at month 12 missing or unscorable (called at month 12)"),
            )
            for flag, name in (("no_hads", "hads"), ("no_sf12", "sf12"))
        ]
    )
    return make_outcome("comp_one_year_questionnaires", counts, queries)

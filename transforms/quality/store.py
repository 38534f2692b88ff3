"""What a quality run leaves behind: its results and queries stored per run and centre,
one query file per centre to send back, and the quarantine counted by centre."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import duckdb
import polars as pl

from schemas import expectations as ex
from transforms.quality import checks as qc
from transforms.quality.checks import CheckContext
from transforms.staging.spreadsheet import write_csv_for_people
from transforms.warehouse.ddl import QUALITY_DDL


def ensure_quality_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create dq_runs, dq_results and dq_queries if they do not exist."""
    con.execute(QUALITY_DDL)


def catalogue() -> pl.DataFrame:
    """The check catalogue as a frame (one row per check, default thresholds)."""
    return pl.DataFrame(
        [
            {
                "check_id": c.check_id,
                "category": c.category,
                "subcategory": c.subcategory,
                "table_name": c.table,
                "column_name": c.column,
                "description": c.description,
                "unit": c.unit,
                "engine": c.engine,
                "threshold_pct": c.threshold.pct,
                "threshold_count": c.threshold.count,
            }
            for c in ex.CHECKS
        ],
        schema_overrides={"threshold_pct": pl.Float64, "threshold_count": pl.Int64},
    )


def expand(counts: pl.DataFrame, centres: list[str], ran: Iterable[str]) -> pl.DataFrame:
    """One row per (check run, centre): a centre without data has n_checked 0.

    A check that could not run (a GX exception: a count row for centre ``*``) has null
    counts in every centre, and the status 'error'.
    """
    checks = catalogue().filter(pl.col("check_id").is_in(list(ran)))
    grid = checks.join(pl.DataFrame({"centre_id": centres}), how="cross")
    errors = counts.filter(centre_id=qc.EVERY_CENTRE).select("check_id", error="observed")
    found = counts.filter(pl.col("centre_id") != qc.EVERY_CENTRE).with_columns(_found=pl.lit(True))
    joined = grid.join(found, on=["check_id", "centre_id"], how="left").join(
        errors, on="check_id", how="left"
    )
    missing, failed = (
        pl.col("_found").is_null(),
        pl.col("check_id").is_in(errors["check_id"].implode()),
    )
    return joined.with_columns(
        n_checked=pl.when(failed).then(None).when(missing).then(0).otherwise("n_checked"),
        n_violating=pl.when(failed).then(None).when(missing).then(0).otherwise("n_violating"),
        observed=pl.coalesce("error", "observed"),
    ).drop("_found", "error", "description")


KEEP_QUERY_RUNS = 7  # quality runs whose full query list dq_queries keeps (a week of nights)


def store_run(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    ctx: CheckContext,
    results: pl.DataFrame,
    queries: pl.DataFrame,
    docs: Path | None,
    gx_digests: pl.DataFrame | None = None,
) -> int:
    """Write a run's results and queries in one transaction (a rerun replaces them), and
    the digests of the tables GX validated (of the centres it validated them in).

    ``dq_queries`` keeps the queries of the last ``KEEP_QUERY_RUNS`` runs only: each run
    stores every centre's (the next run carries them for the centres it does not check
    again), 865,000 rows a night at a million patients, 300 million a year otherwise.
    Every query's whole life (opened, seen, closed, escalated) stays in ``dq_query_log``.
    """
    seq = _run_seq(con, run_id)
    rows = results.with_columns(run_id=pl.lit(run_id), run_seq=pl.lit(seq, pl.Int64))
    asked = queries.with_columns(run_id=pl.lit(run_id))
    run = {
        "run_id": run_id,
        "run_seq": seq,
        "checked_at": ctx.now,
        "snapshot_id": con.execute("SELECT max(snapshot_id) FROM views_built").fetchall()[0][0],
        "cadence_days": ctx.cadence_days,
        "great_expectations": docs is not None,
        "n_results": rows.height,
        "n_breaches": int((rows["status"] == "failed").sum()),
        "data_docs_path": str(docs) if docs else None,
    }
    con.register("dq_new_results", rows)
    con.register("dq_new_queries", asked)
    con.execute("BEGIN TRANSACTION")
    try:
        for table in ("dq_results", "dq_queries", "dq_runs"):
            con.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])
        names = ", ".join(run)  # our own column names
        con.execute(
            f"INSERT INTO dq_runs ({names}) VALUES ({', '.join('?' * len(run))})",
            list(run.values()),
        )
        con.execute("INSERT INTO dq_results BY NAME SELECT * FROM dq_new_results")
        con.execute("INSERT INTO dq_queries BY NAME SELECT * FROM dq_new_queries")
        con.execute(
            "DELETE FROM dq_queries WHERE run_id IN "
            "(SELECT run_id FROM dq_runs WHERE run_seq <= ?)",
            [seq - KEEP_QUERY_RUNS],
        )
        if gx_digests is not None:
            _replace_digests(con, gx_digests, run_id, ctx.scope)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        con.unregister("dq_new_results")
        con.unregister("dq_new_queries")
    return seq


def _replace_digests(
    con, digests: pl.DataFrame, run_id: str, centres: tuple[str, ...] | None
) -> None:
    """The validated tables' digests replace those kept for the centres checked (every
    centre on a full run): a centre with no row left in a table keeps none."""
    tables = digests["table_name"].unique().to_list()
    wanted = None if centres is None else list(centres)
    con.execute(
        "DELETE FROM dq_gx_digests WHERE list_contains($tables, table_name) "
        "AND ($centres IS NULL OR list_contains($centres, centre_id))",
        {"tables": tables, "centres": wanted},
    )
    con.register("dq_new_digests", digests.with_columns(run_id=pl.lit(run_id)))
    try:
        con.execute("INSERT INTO dq_gx_digests BY NAME SELECT * FROM dq_new_digests")
    finally:
        con.unregister("dq_new_digests")


def _run_seq(con, run_id: str) -> int:
    """The run's sequence number: kept on a rerun, else the next one."""
    return con.execute(
        "SELECT coalesce((SELECT run_seq FROM dq_runs WHERE run_id = ?),"
        " (SELECT coalesce(max(run_seq), 0) + 1 FROM dq_runs))",
        [run_id],
    ).fetchall()[0][0]


QUERY_FILE_COLUMNS = (
    "query_id", "kind", "patient_key", "month", "form", "field", "file_name", "source_row",
    "problem", "value", "allowed", "opened_at", "nights_open", "escalated", "is_new",
)  # fmt: skip


def write_queries(open_queries: pl.DataFrame, folder: Path) -> dict[str, Path]:
    """One CSV per centre of its open queries, for the coordinating centre: pseudonyms
    only, never local ids (the centre's own file, with its ids, is in ``outbox.py``).
    Spreadsheet-safe: a value copied from an export never runs as a formula."""
    paths = {}
    for (centre,), part in open_queries.group_by("centre_id", maintain_order=True):
        path = folder / f"{centre}_queries.csv"
        write_csv_for_people(part.select(QUERY_FILE_COLUMNS), path)
        paths[str(centre)] = path
    return paths


def quarantine_by_centre(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Rows still in quarantine (from any run), by centre, form and rule, most first."""
    return con.sql(
        """SELECT centre_id, form, coalesce(column_name, '') AS column_name, rule,
                  count(DISTINCT (file_hash, record)) AS n_rows
           FROM quarantine WHERE resolved_run_id IS NULL
           GROUP BY ALL ORDER BY centre_id, n_rows DESC, form, rule"""
    ).pl()

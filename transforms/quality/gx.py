"""The Great Expectations side of data quality: suites run on the warehouse, per centre.

GX 1.x validates pandas frames (neither polars nor DuckDB: see design.md), so each table
is read from DuckDB through Arrow into pandas. An ephemeral context with in-memory stores
holds the suites (``schemas/expectations.py``); one Checkpoint per table validates it;
the Data Docs site is written under the run's report folder and nowhere else (no
temporary site, no analytics, no version check over the network).

GX reports each expectation over the whole table; with the COMPLETE result format it
lists the index of every unexpected row, which maps violations back to their centre,
patient and month. ``n_checked`` per centre is what GX counted: non-null values (rows
for not-null and compound-key expectations).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl

from schemas import expectations as ex
from transforms.quality.checks import EVERY_CENTRE, Outcome, make_outcome
from transforms.quality.score import strict_sum

SITE = "cohortflow"
_COUNT_ROWS = {"expect_column_values_to_not_be_null", "expect_compound_columns_to_be_unique"}


GX_TABLES = tuple(dict.fromkeys(c.table for c in ex.gx_checks()))


def read_table(con: duckdb.DuckDBPyConnection, table: str) -> pd.DataFrame:
    """The columns of a warehouse table that its GX checks read, as pandas (via Arrow).

    Those are the expectations' columns, plus what the queries name (centre, patient,
    month): a million patients' analysis_patient_months, whose only GX check is its key,
    is 3 columns of 7 million rows, not 12.
    """
    columns = ", ".join(_checked_columns(con, table))
    return con.sql(f"SELECT {columns} FROM {table}").to_arrow_table().to_pandas()


def _checked_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    present = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
    wanted = {"centre_id", "patient_key", "month"}
    for check in ex.gx_checks(table):
        for _, kwargs in check.expectations:
            wanted |= {kwargs["column"]} if "column" in kwargs else set(kwargs["column_list"])
    return [c for c in present if c in wanted]


def table_digests(con: duckdb.DuckDBPyConnection, tables: tuple[str, ...] = GX_TABLES):
    """Per (table, centre): its rows and the sum of their hashes over the columns GX reads,
    and the table's suite: all a centre's GX results on that table depend on (each
    expectation counts a centre's own rows; a patient key belongs to one centre). A sum,
    not a XOR, so that a row sent twice changes it. Read through ``only_centres`` if set.
    """
    parts = []
    for table in tables:  # names from the catalogue, not from input
        columns = ", ".join(_checked_columns(con, table))
        parts.append(
            f"SELECT '{table}' AS table_name, centre_id, count(*) AS n_rows, "
            f"CAST(sum(hash({columns})) AS VARCHAR) AS content FROM {table} GROUP BY centre_id"
        )
    rows = con.sql(" UNION ALL ".join(parts)).pl()
    suites = pl.DataFrame(
        {"table_name": list(tables), "suite": [suite_fingerprint(t) for t in tables]}
    )
    return rows.join(suites, on="table_name", how="left")


def suite_fingerprint(table: str) -> str:
    """What the table's expectations are: a changed value set or bound re-validates it."""
    checks = [(c.check_id, c.expectations) for c in ex.gx_checks(table)]
    return hashlib.sha256(repr(checks).encode()).hexdigest()[:16]


def ephemeral_context(docs_dir: Path):
    """An in-memory GX context whose only Data Docs site is ``docs_dir``."""
    os.environ["GX_ANALYTICS_ENABLED"] = "false"  # before the import; there is no network
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    site = {
        "class_name": "SiteBuilder",
        "store_backend": {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": str(docs_dir),
        },
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    }
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
        data_docs_sites={SITE: site},
    )
    return gx.get_context(project_config=config, mode="ephemeral")


def _checkpoints(context, tables: tuple[str, ...]) -> dict:
    """One Checkpoint per table, each validating its whole frame against its suite."""
    import great_expectations as gx

    suites = ex.build_suites(context, tables)
    source = context.data_sources.add_pandas("warehouse")
    checkpoints = {}
    for table in tables:
        batch = source.add_dataframe_asset(table).add_batch_definition_whole_dataframe("all")
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=table, data=batch, suite=suites[table])
        )
        checkpoints[table] = context.checkpoints.add(
            gx.Checkpoint(
                name=f"{SITE}_{table}",
                validation_definitions=[definition],
                result_format={"result_format": "COMPLETE"},
            )
        )
    return checkpoints


def run_gx_checks(
    con: duckdb.DuckDBPyConnection,
    docs_dir: Path,
    run_name: str,
    tables: tuple[str, ...] = GX_TABLES,
) -> Outcome:
    """The GX checks of ``tables`` (every table of the catalogue unless told), per centre;
    builds the Data Docs of those validations in ``docs_dir``."""
    from great_expectations.core.run_identifier import RunIdentifier

    context = ephemeral_context(docs_dir)
    checkpoints = _checkpoints(context, tables)
    outcomes = []
    for table in tables:
        frame = read_table(con, table)
        result = checkpoints[table].run(
            batch_parameters={"dataframe": frame},
            # GX parses the run name as a date when it can (its result store, its Data Docs
            # page titles): a run id such as "20261127T040310Z-8212ad" reads as a UTC
            # offset of -82:12 and crashes. "run-..." is no date; the run time is explicit.
            run_id=RunIdentifier(run_name=f"run-{run_name}", run_time=dt.datetime.now(dt.UTC)),
        )
        rows = pl.from_pandas(frame)  # once per table, not once per expectation
        for validation in result.run_results.values():
            outcomes += [_split(rows, r) for r in validation.results]
        del frame, rows, result
        _release_batches(context)
    context.build_data_docs(site_names=[SITE])
    return _combine(outcomes)


def _release_batches(context) -> None:
    """Drop the frames GX keeps cached after a validation: otherwise every table validated
    stays in memory until the end of the run (1 M patients: 7.3 GB, against 1.8 GB)."""
    manager = context.data_sources.get("warehouse").get_execution_engine().batch_manager
    manager.batch_data_cache.clear()
    manager.reset_batch_cache()


def _split(frame: pl.DataFrame, result) -> Outcome:
    """One expectation's result, per centre, with a query per unexpected row (GX's
    unexpected indexes are row numbers: the pandas frame it validated has a RangeIndex)."""
    config = result.expectation_config
    check_id = config.meta["check_id"]
    column = config.kwargs.get("column") or ", ".join(config.kwargs.get("column_list", []))
    message = _exception(result.exception_info or {})
    if message:
        failed = {"centre_id": [EVERY_CENTRE], "n_checked": [None], "n_violating": [None]}
        return make_outcome(check_id, pl.DataFrame(failed).with_columns(observed=pl.lit(message)))
    checked = _checked_per_centre(frame, config)
    index = result.result.get("unexpected_index_list") or []
    bad = frame[list(index)] if index else frame.clear()
    violating = bad.group_by("centre_id").agg(n_violating=pl.len())
    counts = checked.join(violating, on="centre_id", how="left").with_columns(
        pl.col("n_violating").fill_null(0)
    )
    return make_outcome(check_id, counts, _queries(bad, config, column))


def _exception(info: dict) -> str | None:
    """The message of an expectation that raised; GX nests it per metric when a metric did."""
    if info.get("raised_exception"):
        return str(info.get("exception_message"))[:200]
    nested = [v for v in info.values() if isinstance(v, dict) and v.get("raised_exception")]
    return str(nested[0].get("exception_message"))[:200] if nested else None


def _checked_per_centre(frame: pl.DataFrame, config) -> pl.DataFrame:
    """What GX counted per centre: non-null values, or rows for row-wise expectations."""
    column = config.kwargs.get("column")
    if config.type in _COUNT_ROWS or not column:
        return frame.group_by("centre_id").agg(n_checked=pl.len())
    return frame.group_by("centre_id").agg(n_checked=pl.col(column).count())


def _queries(bad: pl.DataFrame, config, column: str) -> pl.DataFrame:
    kind = config.type
    problem = _PROBLEMS.get(kind, kind)
    if "min_value" in config.kwargs:
        problem = f"{problem} {config.kwargs['min_value']}-{config.kwargs['max_value']}"
    single = config.kwargs.get("column")
    value = pl.col(single).cast(pl.String) if single else pl.lit(None, pl.String)
    return bad.select(
        "centre_id",
        "patient_key",
        month=pl.col("month") if "month" in bad.columns else pl.lit(None, pl.Int64),
        field=pl.lit(column),
        problem=pl.lit(problem),
        value=value,
    )


_PROBLEMS = {
    "expect_column_values_to_be_between": "value outside",
    "expect_column_values_to_be_in_set": "unknown code",
    "expect_column_values_to_not_be_null": "missing value",
    "expect_column_values_to_be_unique": "duplicate key",
    "expect_compound_columns_to_be_unique": "duplicate key",
}


def _combine(outcomes: list[Outcome]) -> Outcome:
    """Sum the expectations of a check (several items, several scores) per centre."""
    counts = pl.concat([o.counts for o in outcomes])
    summed = counts.group_by("check_id", "centre_id", maintain_order=True).agg(
        # an error in any expectation leaves the check without counts (status: error)
        n_checked=strict_sum("n_checked"),
        n_violating=strict_sum("n_violating"),
        observed=pl.col("observed").drop_nulls().first(),
    )
    ran = tuple(dict.fromkeys(c for o in outcomes for c in o.ran))
    return Outcome(summed, pl.concat([o.queries for o in outcomes]), ran)

"""Queries with a lifecycle: opened the night a problem appears, closed by the export that
fixes it, escalated when it stays open.

As a clinical data manager knows them from REDCap's data resolution workflow or
OpenClinica's discrepancy notes, but automatic: every quality run lists the problems it
observes now, each with a stable id, and ``dq_query_log`` keeps one row per query:
opened (run, time), last seen, nights open, closed (run, time), escalated.

What is a query: a value the centre must fix (a quarantined row, a failed conformance or
plausibility unit) or, where the check is breached in that centre, a missing item
(completeness, timeliness). A row quarantined only because its patient's inclusion record
is in quarantine is a query of kind ``waiting``: it closes with that record's fix. A
missing item of a check that passes in the centre is information, not a query.

A quarantined row is observed while no later export of the same form from its centre has
re-sent that patient: the corrected row then loads (and the query closes), or the same
problem is quarantined again from the later file (and the query persists, same id).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

import duckdb
import polars as pl

from schemas import expectations as ex
from schemas.forms import FORMS
from transforms.quality.wording import (
    allowed,
    check_problem,
    field_label,
    form_of_table,
    quarantine_problem,
)

ESCALATE_AFTER_NIGHTS = 7
TO_FIX, WAITING = "to fix", "waiting"
ACTIONABLE_ALWAYS = (ex.CONFORMANCE, ex.PLAUSIBILITY)  # a bad unit is a query even below
WAITING_MESSAGE = "inclusion record is in quarantine"  # threshold; missing items only when breached
OBSERVED_SCHEMA = pl.Schema(
    {
        "query_id": pl.String,
        "centre_id": pl.String,
        "kind": pl.String,
        "source": pl.String,  # the check id, or "quarantine: <rule>"
        "form": pl.String,
        "patient_key": pl.String,
        "month": pl.Int64,
        "field": pl.String,
        "file_name": pl.String,
        "source_row": pl.Int64,
        "problem": pl.String,
        "value": pl.String,
        "allowed": pl.String,
    }
)


def query_id(*parts: object) -> str:
    """A stable id from what the problem is about (never a local id: pseudonyms only)."""
    text = "\x1f".join("" if p is None else str(p) for p in parts)
    return "Q" + hashlib.sha256(text.encode()).hexdigest()[:12].upper()


def query_ids(frame: pl.DataFrame, source: str, columns: list[str]) -> pl.Series:
    """``query_id(source, *row)`` of every row of ``frame``'s ``columns``, the same ids
    computed by DuckDB's sha256 in one pass (a Python call per row took seconds a night
    for the whole cohort's queries; strings and integers only, as their text)."""
    parts = [f"'{source}'"] + [f"coalesce(CAST(\"{c}\" AS VARCHAR), '')" for c in columns]
    text = " || chr(31) || ".join(parts)
    with duckdb.connect() as mem:
        mem.register("query_rows", frame.select(columns))
        ids = mem.sql(f"SELECT 'Q' || upper(sha256({text})[1:12]) AS query_id FROM query_rows")
        return ids.pl()["query_id"]


def per_distinct(frame: pl.DataFrame, columns: list[str], words, name: str) -> pl.DataFrame:
    """``frame`` with ``name`` = ``words(row of columns)``, called once per distinct
    combination (a few hundred) rather than once per row (the cohort's queries)."""
    distinct = frame.select(columns).unique()
    worded = distinct.with_columns(
        pl.struct(columns).map_elements(words, return_dtype=pl.String).alias(name)
    )
    return frame.join(worded, on=columns, how="left", nulls_equal=True, maintain_order="left")


@dataclass(frozen=True)
class Reach:
    """Where a quality run looked for problems: every problem of ``centres`` (None: of
    every centre), and in every centre the units of the checks ``everywhere``.

    A run that re-checks only the centres whose data changed does not look at the others'
    rows: their open queries persist a night more as they are (nothing they come from
    changed), none is closed, and their information lines are kept (``dq_information``).
    """

    centres: tuple[str, ...] | None = None
    everywhere: tuple[str, ...] = ()

    def covers(self, source: str = "source") -> pl.Expr:
        """Rows within reach, by ``centre_id`` and the check id in column ``source``."""
        if self.centres is None:
            return pl.lit(True)
        return pl.col("centre_id").is_in(self.centres) | pl.col(source).is_in(self.everywhere)

    def params(self) -> dict[str, object]:
        """For SQL: ``$centres`` (null: every centre) and ``$everywhere``."""
        centres = None if self.centres is None else list(self.centres)
        return {"centres": centres, "everywhere": list(self.everywhere)}


EVERYWHERE = Reach()
WITHIN_REACH = (  # SQL on dq_query_log or dq_information, with Reach.params()
    "($centres IS NULL OR list_contains($centres, centre_id) OR list_contains($everywhere, source))"
)


def observed_problems(
    con: duckdb.DuckDBPyConnection,
    queries: pl.DataFrame,
    results: pl.DataFrame,
    reach: Reach = EVERYWHERE,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(queries observed now, information lines) within ``reach``: the check units and
    current quarantine."""
    units = _check_units(con, queries.filter(reach.covers("check_id")), results)
    breached = pl.col("check_status") == "failed"
    always = pl.col("category").is_in(ACTIONABLE_ALWAYS)
    actionable = units.filter(always | breached).drop("category", "check_status")
    information = units.filter(~(always | breached)).drop("category", "check_status")
    quarantined = _current_quarantine(con, reach.centres)
    observed = pl.concat(
        [
            part.select(list(OBSERVED_SCHEMA)).cast(OBSERVED_SCHEMA)
            for part in (actionable, quarantined)
        ]
    )
    return observed.unique("query_id", keep="first", maintain_order=True), information


def _check_units(con, queries: pl.DataFrame, results: pl.DataFrame) -> pl.DataFrame:
    """Each check's row-level units, worded, with the file and row they came from."""
    if queries.is_empty():
        return pl.DataFrame(
            schema={**OBSERVED_SCHEMA, "category": pl.String, "check_status": pl.String}
        )
    status = results.select("check_id", "centre_id", check_status="status")
    checks = pl.DataFrame(
        [(c.check_id, c.category, form_of_table(c.table)) for c in ex.CHECKS],
        schema=["check_id", "category", "form"],
        orient="row",
    )
    rows = queries.join(status, on=["check_id", "centre_id"], how="left").join(
        checks, on="check_id", how="left"
    )
    rows = _with_lineage(con, rows)
    identity = ["centre_id", "check_id", "patient_key", "month", "field"]
    rows = per_distinct(
        rows, ["month", "problem"], lambda r: check_problem(r["month"], r["problem"]), "_words"
    )
    rows = per_distinct(rows, ["form", "field"], lambda r: allowed(r["form"], r["field"]), "_ok")
    return rows.with_columns(
        query_id=query_ids(rows, "check", identity),
        kind=pl.lit(TO_FIX),
        source=pl.col("check_id"),
        problem=pl.col("_words"),
        allowed=pl.col("_ok"),
    ).drop("_words", "_ok")


def _with_lineage(con, rows: pl.DataFrame) -> pl.DataFrame:
    """The file and row each unit's record came from (current rows' lineage), if any;
    read for the units' patients only (not the whole warehouse's lineage)."""
    lineage = []
    for name, form in FORMS.items():
        month = "month" if "month" in form.key else "NULL"
        lineage.append(
            f"SELECT '{name}' AS form, t.patient_key, {month} AS month, f.file_name, "
            f"t._source_row AS source_row FROM {form.table} t "
            "JOIN ingested_files f ON f.file_hash = t._file_hash AND f.form = "
            f"'{name}' WHERE t.patient_key IN (SELECT patient_key FROM dq_unit_patients "
            f"WHERE form = '{name}')"
        )
    con.register("dq_unit_patients", rows.select("form", "patient_key").unique())
    try:
        found = con.sql(" UNION ALL ".join(lineage)).pl()
    finally:
        con.unregister("dq_unit_patients")
    found = found.unique(["form", "patient_key", "month"], keep="first")
    by_month = rows.join(found, on=["form", "patient_key", "month"], how="left")
    return by_month.with_columns(pl.col("month").cast(pl.Int64))


QUARANTINE_NOW = """
WITH f AS (
    SELECT file_hash, form, centre_id, ingested_at,
           coalesce(export_date, CAST(ingested_at AS DATE)) AS exported
    FROM ingested_files),
q AS (
    SELECT q.*, f.exported, f.ingested_at FROM quarantine q JOIN f USING (file_hash, form)
    WHERE q.resolved_run_id IS NULL
      AND ($centres IS NULL OR list_contains($centres, q.centre_id))),
seen AS ({seen}),
current AS (
    SELECT q.* FROM q WHERE q.patient_key IS NULL OR NOT EXISTS (
        SELECT 1 FROM seen s JOIN f later ON later.file_hash = s.file_hash
                                         AND later.form = s.form
        WHERE s.form = q.form AND s.patient_key = q.patient_key
          AND later.centre_id = q.centre_id
          AND (later.exported, later.ingested_at) > (q.exported, q.ingested_at)))
SELECT centre_id, form, patient_key, column_name, rule, value, message, file_name,
       source_row, exported, ingested_at
FROM current
"""


def _current_quarantine(con, centres: tuple[str, ...] | None = None) -> pl.DataFrame:
    """Quarantined rows (of ``centres``; None: all) not yet superseded by a later export
    re-sending their patient; one per problem (the latest file's), worded."""
    seen = " UNION ALL ".join(
        f"SELECT '{name}' AS form, patient_key, _file_hash AS file_hash FROM {f.table}_history"
        for name, f in FORMS.items()
    )
    wanted = None if centres is None else list(centres)
    rows = con.sql(QUARANTINE_NOW.format(seen=seen), params={"centres": wanted}).pl()
    identity = ["centre_id", "form", "patient_key", "column_name", "rule"]
    latest = rows.with_columns(
        _recency=pl.struct("exported", "ingested_at").rank("dense", descending=True).over(identity)
    ).filter(pl.col("_recency") == 1)
    latest = latest.sort("source_row").with_columns(
        _nth=pl.int_range(pl.len()).over(identity),
        _anchor=pl.when(pl.col("patient_key").is_null())
        .then(pl.format("row {}", pl.col("source_row")))
        .otherwise(pl.col("patient_key")),
    )
    identity = ["centre_id", "form", "_anchor", "column_name", "rule", "_nth"]
    latest = per_distinct(
        latest, ["form", "column_name", "rule", "value", "message"], _quarantine_words, "_words"
    )
    latest = per_distinct(
        latest, ["form", "column_name"], lambda r: allowed(r["form"], r["column_name"]), "_ok"
    )
    return latest.select(
        query_id=query_ids(latest, "quarantine", identity),
        centre_id="centre_id",
        kind=pl.when(pl.col("message").str.contains(WAITING_MESSAGE, literal=True))
        .then(pl.lit(WAITING))
        .otherwise(pl.lit(TO_FIX)),
        source=pl.format("quarantine: {}", pl.col("rule")),
        form="form",
        patient_key="patient_key",
        month=pl.lit(None, pl.Int64),
        field="column_name",
        file_name="file_name",
        source_row="source_row",
        problem="_words",
        value="value",
        allowed="_ok",
    )


def _quarantine_words(row: dict) -> str:
    if row["rule"] == "unknown patient":  # a relation, worded by its own message
        return f"{field_label(row['form'], None)}: {row['message']}"
    return quarantine_problem(row["form"], row["column_name"], row["rule"], row["value"])


def update_log(
    con: duckdb.DuckDBPyConnection,
    observed: pl.DataFrame,
    run_id: str,
    now: dt.datetime,
    *,
    reach: Reach = EVERYWHERE,
    information: pl.DataFrame | None = None,
    escalate_after: int = ESCALATE_AFTER_NIGHTS,
) -> None:
    """Open new queries, keep those still observed (a night more), close the others within
    ``reach`` and keep those beyond it (a night more); a query open ``escalate_after``
    nights is escalated. ``information``: the lines found within ``reach``, replacing
    those kept there; the run is then marked ``lifecycle_complete``. One transaction; a
    rerun of ``run_id`` counts once."""
    con.register("dq_observed", observed)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(_PERSIST, [run_id, escalate_after, run_id])
        if reach.centres is not None:  # not looked at tonight: as they were, a night older
            persist = {"run": run_id, "after": escalate_after, **reach.params()}
            con.execute(_PERSIST_BEYOND_REACH, persist)
        con.execute(_REOPEN, [run_id, now, run_id])  # the problem is back: a new query
        con.execute(_OPEN, [run_id, now, run_id])
        con.execute(_CLOSE, {"run": run_id, "now": now, **reach.params()})
        if information is not None:
            _keep_information(con, information, run_id, reach)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        con.unregister("dq_observed")


_PERSIST = """
UPDATE dq_query_log l SET last_seen_run = ?, problem = o.problem, value = o.value,
    file_name = o.file_name, source_row = o.source_row,
    nights_open = l.nights_open + 1, escalated = l.nights_open + 1 >= ?
FROM dq_observed o
WHERE l.query_id = o.query_id AND l.closed_run IS NULL AND l.last_seen_run <> ?
"""
_PERSIST_BEYOND_REACH = f"""
UPDATE dq_query_log SET last_seen_run = $run,
    nights_open = nights_open + 1, escalated = nights_open + 1 >= $after
WHERE closed_run IS NULL AND last_seen_run <> $run AND NOT {WITHIN_REACH}
"""
_REOPEN = """
UPDATE dq_query_log l SET opened_run = ?, opened_at = ?, last_seen_run = ?,
    nights_open = 1, closed_run = NULL, closed_at = NULL, escalated = false,
    problem = o.problem, value = o.value
FROM dq_observed o
WHERE l.query_id = o.query_id AND l.closed_run IS NOT NULL
"""
_OPEN = """
INSERT INTO dq_query_log
SELECT o.query_id, o.centre_id, o.kind, o.source, o.form, o.patient_key, o.month, o.field,
       o.file_name, o.source_row, o.problem, o.value, o.allowed, ?, ?, ?, 1, NULL, NULL, false
FROM dq_observed o
WHERE NOT EXISTS (SELECT 1 FROM dq_query_log l WHERE l.query_id = o.query_id)
"""
_CLOSE = f"""
UPDATE dq_query_log SET closed_run = $run, closed_at = $now
WHERE closed_run IS NULL AND query_id NOT IN (SELECT query_id FROM dq_observed)
  AND {WITHIN_REACH}
"""
INFORMATION_COLUMNS = (
    "centre_id", "source", "form", "patient_key", "month", "field", "file_name",
    "source_row", "problem", "value", "allowed",
)  # fmt: skip


def _keep_information(
    con: duckdb.DuckDBPyConnection, information: pl.DataFrame, run_id: str, reach: Reach
) -> None:
    """Tonight's information lines replace those within ``reach``; the run is complete."""
    con.execute(f"DELETE FROM dq_information WHERE {WITHIN_REACH}", reach.params())
    lines = information.select(INFORMATION_COLUMNS).with_columns(run_id=pl.lit(run_id))
    con.register("dq_new_information", lines)
    try:
        con.execute("INSERT INTO dq_information BY NAME SELECT * FROM dq_new_information")
    finally:
        con.unregister("dq_new_information")
    con.execute("UPDATE dq_runs SET lifecycle_complete = true WHERE run_id = ?", [run_id])


def kept_information(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Every centre's information lines, as the last run that looked at each found them."""
    return con.sql(
        f"SELECT {', '.join(INFORMATION_COLUMNS)} FROM dq_information "
        "ORDER BY centre_id, form, patient_key, month, field, source, file_name, source_row"
    ).pl()


def lifecycle_complete(con: duckdb.DuckDBPyConnection, run_id: str) -> bool:
    """Whether ``run_id`` wrote its query log and information lines (a run that died
    before, or one of an older version, did not: the next run then looks everywhere)."""
    rows = con.execute("SELECT lifecycle_complete FROM dq_runs WHERE run_id = ?", [run_id])
    found = rows.fetchall()
    return bool(found and found[0][0])


def open_queries(con: duckdb.DuckDBPyConnection, run_id: str) -> pl.DataFrame:
    """The queries open after ``run_id``, each marked new (opened by it) or not."""
    return con.sql(
        "SELECT *, opened_run = ? AS is_new FROM dq_query_log WHERE closed_run IS NULL "
        "ORDER BY centre_id, kind, escalated DESC, opened_at, query_id",
        params=[run_id],
    ).pl()


def lifecycle_by_centre(con: duckdb.DuckDBPyConnection, run_id: str) -> pl.DataFrame:
    """Per centre: queries open (to fix, waiting), new and closed by this run, escalated,
    and the opening time of the oldest open one."""
    return con.sql(
        """SELECT centre_id,
                  count(*) FILTER (closed_run IS NULL AND kind = 'to fix') AS open_to_fix,
                  count(*) FILTER (closed_run IS NULL AND kind = 'waiting') AS open_waiting,
                  count(*) FILTER (opened_run = ? AND closed_run IS NULL) AS new_tonight,
                  count(*) FILTER (closed_run = ?) AS closed_tonight,
                  count(*) FILTER (closed_run IS NULL AND escalated) AS escalated,
                  min(opened_at) FILTER (closed_run IS NULL) AS oldest_open
           FROM dq_query_log GROUP BY centre_id ORDER BY centre_id""",
        params=[run_id, run_id],
    ).pl()

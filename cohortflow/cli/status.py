"""``cohortflow status`` as a person reads it, in 100 columns: the last night at a glance,
the last runs by kind, then each centre.

Counts agree with the night's own summary: a file is a file received (a workbook holding
several forms counts once), rows are the night's rows loaded and quarantined.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

WIDTH = 100
RUNS_SHOWN = 6


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params=()) -> list[dict]:
    cursor = con.execute(sql, list(params))
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {name for (name,) in con.execute("SHOW TABLES").fetchall()}


def _runs(con: duckdb.DuckDBPyConnection) -> str:
    """The runs table as SQL, with a ``kind`` column even in a copy made before runs had
    one (read-only: nothing can be added to it)."""
    columns = {r[0] for r in con.execute("DESCRIBE runs").fetchall()}
    return "runs" if "kind" in columns else "(SELECT *, NULL::VARCHAR AS kind FROM runs)"


def _n(value) -> str:
    return "-" if value is None else f"{int(value):,}"


def last_night_lines(con: duckdb.DuckDBPyConnection, artifacts: Path) -> list[str]:
    """The last night: state, files, rows, quality breaches (new, persisting), models."""
    nights = _rows(
        con,
        f"""SELECT run_id, status, started_at, finished_at, rows_loaded, rows_quarantined,
                  snapshot_id, models_published, message
           FROM {_runs(con)}
           WHERE kind = 'night' OR (kind IS NULL AND files_loaded IS NOT NULL)
           ORDER BY run_seq DESC LIMIT 1""",
    )
    if not nights:
        return ["Last night: none yet"]
    night = nights[0]
    files = _rows(
        con,
        """SELECT count(DISTINCT (centre_id, file_name)) AS files,
                  count(DISTINCT centre_id) AS centres,
                  count(DISTINCT (centre_id, file_name)) FILTER (status = 'rejected') AS rejected
           FROM ingested_files WHERE run_id = ?""",
        [night["run_id"]],
    )[0]
    took = ""
    if night["finished_at"] and night["started_at"]:
        took = f" ({(night['finished_at'] - night['started_at']).total_seconds() / 60:.0f} min)"
    lines = [
        f"Last night {night['run_id']}: {night['status']}, started "
        f"{night['started_at']:%Y-%m-%d %H:%M} UTC{took}",
        f"  files    {files['files']:,} from {files['centres']} centres, "
        f"{files['rejected']} rejected",
        f"  rows     {_n(night['rows_loaded'])} loaded, {_n(night['rows_quarantined'])} "
        "quarantined",
        *_quality_line(con, night["run_id"]),
        *_model_lines(night, artifacts),
    ]
    if night["message"]:
        lines.append(f"  problems {str(night['message'])[: WIDTH - 11]}")
    return lines


def _quality_line(con: duckdb.DuckDBPyConnection, run_id: str) -> list[str]:
    """Breaches of the night's quality run: new since the run before, or persisting."""
    if "dq_runs" not in _tables(con):
        return ["  quality  never checked"]
    runs = _rows(con, "SELECT run_id, run_seq FROM dq_runs ORDER BY run_seq DESC LIMIT 2")
    if not runs:
        return ["  quality  never checked"]
    mine = next((r for r in runs if r["run_id"] == run_id), runs[0])
    before = [r for r in runs if r["run_seq"] < mine["run_seq"]]
    failed = _failed(con, mine["run_id"])
    earlier = _failed(con, before[0]["run_id"]) if before else set()
    new, kept = len(failed - earlier), len(failed & earlier)
    label = "" if mine["run_id"] == run_id else f" (last quality run {mine['run_id']})"
    return [f"  quality  {len(failed)} breaches: {new} new, {kept} persisting{label}"]


def _failed(con: duckdb.DuckDBPyConnection, run_id: str) -> set[tuple[str, str]]:
    rows = con.execute(
        "SELECT check_id, centre_id FROM dq_results WHERE run_id = ? AND status = 'failed'",
        [run_id],
    ).fetchall()
    return {(c, k) for c, k in rows}


def _model_lines(night: dict, artifacts: Path) -> list[str]:
    """Refitted tonight, carried over (as of which snapshot), or not refitted."""
    if not night["models_published"]:
        return [f"  models   not refitted tonight (snapshot {night['snapshot_id']})"]
    manifest = artifacts / night["run_id"] / "manifest.json"
    as_of = {}
    if manifest.exists():
        as_of = json.loads(manifest.read_text()).get("specification", {}).get("as_of", {})
    fitted = [name for name, a in as_of.items() if a["run_id"] == night["run_id"]] or ["all"]
    lines = [f"  models   refitted on snapshot {night['snapshot_id']}: {', '.join(fitted)}"]
    for name, entry in as_of.items():
        if entry["run_id"] != night["run_id"]:
            lines.append(
                f"           {name} carried over: as of snapshot {entry['snapshot_id']} "
                f"({entry['fitted_at'][:10]})"
            )
    return lines


def runs_lines(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The last runs, newest first, with their kind: night, fit, rekey, quality."""
    quality = "dq_runs" in _tables(con)
    rows = _rows(
        con,
        f"""SELECT * FROM (
              SELECT run_id, coalesce(kind, CASE WHEN files_loaded IS NOT NULL THEN 'night'
                                                 ELSE 'fit' END) AS kind,
                     status, started_at, rows_loaded, rows_quarantined, models_published
              FROM {_runs(con)}
              {
            "UNION ALL SELECT run_id, 'quality', n_breaches || ' breaches', checked_at, "
            "NULL, NULL, NULL FROM dq_runs WHERE run_id NOT IN (SELECT run_id FROM runs)"
            if quality
            else ""
        })
            ORDER BY started_at DESC LIMIT {RUNS_SHOWN}""",
    )
    head = f"  {'run':<24} {'kind':<7} {'status':<20} {'started (UTC)':<16} {'loaded':>9} "
    lines = [head + f"{'quarant.':>8}  models", f"  {'-' * (WIDTH - 4)}"]
    for r in rows:
        models = {True: "yes", False: "-"}.get(r["models_published"], "")
        lines.append(
            f"  {r['run_id']:<24} {r['kind']:<7} {str(r['status'])[:20]:<20} "
            f"{r['started_at']:%Y-%m-%d %H:%M} {_n(r['rows_loaded']):>9} "
            f"{_n(r['rows_quarantined']):>8}  {models}"
        )
    return lines


def centre_lines(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Per centre: files received, rows loaded and quarantined, corrections, last file,
    and the last data-quality run's pass rate."""
    quality = "dq_results" in _tables(con)
    rows = _rows(
        con,
        f"""WITH files AS (
              SELECT centre_id, count(DISTINCT file_hash) AS files,
                     count(DISTINCT file_hash) FILTER (status = 'rejected') AS rejected,
                     sum(rows_loaded) AS loaded, sum(rows_quarantined) AS quarantined,
                     sum(rows_changed) AS corrected, sum(rows_absent) AS absent,
                     CAST(max(ingested_at) AS DATE) AS last_file
              FROM ingested_files GROUP BY centre_id)
            SELECT f.*, {"q.passed, q.failed" if quality else "NULL AS passed, NULL AS failed"}
            FROM files f
            {
            '''LEFT JOIN (SELECT centre_id,
                   round(100.0 * count(*) FILTER (status = 'passed')
                     / nullif(count(*) FILTER (status IN ('passed', 'failed')), 0)) AS passed,
                   count(*) FILTER (status = 'failed') AS failed
                 FROM dq_results WHERE run_seq = (SELECT max(run_seq) FROM dq_results)
                 GROUP BY centre_id) q USING (centre_id)'''
            if quality
            else ""
        }
            ORDER BY f.centre_id""",
    )
    head = (
        f"  {'centre':<8}{'files':>6}{'rejected':>9}{'rows loaded':>13}{'quarantined':>12}"
        f"{'corrected':>10}{'absent':>8}  {'last file':<10}{'DQ passed':>10}{'failed':>7}"
    )
    lines = [head, f"  {'-' * (WIDTH - 4)}"]
    for r in rows:
        passed = "-" if r["passed"] is None else f"{r['passed']:.0f}%"
        lines.append(
            f"  {r['centre_id']:<8}{r['files']:>6}{r['rejected']:>9}{_n(r['loaded']):>13}"
            f"{_n(r['quarantined']):>12}{_n(r['corrected']):>10}{_n(r['absent']):>8}  "
            f"{r['last_file']!s:<10}{passed:>10}{_n(r['failed']):>7}"
        )
    return lines

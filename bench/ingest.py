"""Ingestion benchmark: cohortflow's full and incremental nights against raw DuckDB.

    python bench/ingest.py [--patients 20000] [--centres 50]

Simulates CSV exports (REDCap-like and French wide styles, 2% faults), then measures,
each step in its own process (so that peak memory is the step's own):

* cohortflow full ingestion: discover, read, map, validate (Pandera), pseudonymise, load
  (the flow's plain functions, as the nightly flow does: by groups of 100 centres,
  staged on 4 threads, then one writer validates each form's files together and loads
  them in batches;
  without Prefect, whose start-up is about 11 s apart);
* raw DuckDB: ``read_csv`` of the same files into tables, no mapping or validation;
* the baseline a user would write: pandas + Pandera's pandas backend doing the same
  mapping and validation, loading valid rows into DuckDB (``bench/pandas_baseline.py``);
* an incremental night: one centre sends one corrected re-export;
* what a night does after loading: its snapshot id and the analysis views, after the
  full night (a first build: every patient) and after the incremental one (only the
  patients whose rows changed are rebuilt; the snapshot id is kept by each batch);
* what follows, on the whole cohort: the data-quality run (every check, Great
  Expectations included, and its report) and the models (every fit, published).

Prints a table; nothing is asserted (figures go in the issue note).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STEP = r"""
import json, sys, time
from pathlib import Path
step, ws = sys.argv[1], Path(sys.argv[2])
t0 = time.perf_counter()
extra = {}
if step == "cohortflow":
    from transforms import warehouse
    from transforms.ingest import load_prepared
    from transforms.staging.prepare import prepare_centre
    from transforms.staging.mapping import load_all_mappings
    con = warehouse.connect(ws / "warehouse.duckdb")
    run = f"bench-{time.time_ns()}"
    warehouse.start_run(con, run)
    known = warehouse.known_files(con)
    rows = 0
    # as the nightly flow does: centres staged on 4 threads, then one writer validates
    # each form's files together and loads them
    from concurrent.futures import ThreadPoolExecutor
    from cohortflow.settings import Settings
    from transforms.ingest import centre_groups
    mappings = list(load_all_mappings(ws / "centres").values())
    for group in centre_groups(mappings, Settings(ws).centres_per_batch):
        with ThreadPoolExecutor(max_workers=4) as pool:
            prepared = list(pool.map(lambda m: prepare_centre(ws / "inbox", m, known), group))
        for report in load_prepared(con, [f for c in prepared for f in c], run, "bench-key"):
            rows += report.rows_read
        del prepared
    con.close()
elif step == "derive":
    from transforms import warehouse
    con = warehouse.connect(ws / "warehouse.duckdb")
    snapshot = warehouse.snapshot_id(con)
    warehouse.refresh_views(con, snapshot)
    rows = con.execute("SELECT count(*) FROM analysis_patient_months").fetchone()[0]
    con.close()
elif step == "quality":
    import datetime as dt
    from transforms import warehouse
    from transforms.quality import run_quality
    con = warehouse.connect(ws / "warehouse.duckdb")
    run = f"bench-{time.time_ns()}"
    warehouse.start_run(con, run)
    result = run_quality(con, run_id=run, workspace_reports=ws / "reports", now=dt.datetime.now())
    rows = result.results.height
    con.close()
elif step == "models":
    from models.suite import MODEL_INPUTS, fit_and_publish_all
    from transforms import warehouse
    con = warehouse.connect(ws / "warehouse.duckdb", read_only=True)
    snapshot = warehouse.snapshot_id(con)
    views = warehouse.analysis_views(con, MODEL_INPUTS)  # as the nightly fit does
    con.close()
    study = fit_and_publish_all(views, ws / "artifacts", run_id="bench", snapshot_id=snapshot)
    rows = views["analysis_patients"].height
    extra = {"fit_seconds": study.fit_seconds, "failed": study.failed}
elif step == "pandas":
    from bench.pandas_baseline import ingest_with_pandas
    rows = ingest_with_pandas(ws)
elif step == "duckdb":
    import duckdb
    con = duckdb.connect(str(ws / "raw.duckdb"))
    rows = 0
    for i, path in enumerate(sorted((ws / "inbox").rglob("*.csv"))):
        latin = path.name.startswith(("suivi", "inclusion", "ketamine", "hads", "sf12", "ei",
                                      "traitements"))
        options = ", encoding = 'latin-1'" if latin else ""
        con.execute(f"CREATE TABLE t{i} AS SELECT * FROM read_csv('{path}'{options})")
        rows += con.execute(f"SELECT count(*) FROM t{i}").fetchone()[0]
    con.close()
seconds = time.perf_counter() - t0
# this process's own peak (ru_maxrss would count the parent it was forked from)
status = open("/proc/self/status").read().splitlines()
peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024
print(json.dumps({"seconds": seconds, "peak_mb": peak, "rows": rows, **extra}))
"""


def run_step(step: str, workspace: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", STEP, step, str(workspace)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{step} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def corrected_reexport(workspace: Path) -> Path:
    """The first REDCap centre re-exports its follow-ups with one score corrected."""
    import polars as pl

    old = sorted((workspace / "inbox").glob("*/C*_followup_*.csv"))[0]
    rows = pl.read_csv(old, infer_schema=False)
    fixed = rows.with_columns(
        nprs=pl.when(pl.int_range(pl.len()) == 0).then(pl.lit("0")).otherwise(pl.col("nprs"))
    )
    new = old.with_name(old.name.replace("followup_", "followup_corrected_"))
    fixed.write_csv(new)
    return new


def machine() -> str:
    """Cores and memory of this machine, printed with the figures."""
    total_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    return f"{os.cpu_count()} cores, {total_kb / 2**20:.0f} GB RAM"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=20_000)
    parser.add_argument("--centres", type=int, default=50)
    args = parser.parse_args()
    from simulator.write import simulate_into_workspace

    workspace = Path(tempfile.mkdtemp(prefix="cohortflow-bench-"))
    try:
        t0 = time.perf_counter()
        simulate_into_workspace(
            workspace,
            n_patients=args.patients,
            n_centres=args.centres,
            styles=("redcap", "fr_wide"),
        )
        simulate_s = time.perf_counter() - t0
        size_mb = sum(p.stat().st_size for p in (workspace / "inbox").rglob("*")) / 2**20
        raw = run_step("duckdb", workspace)
        baseline = run_step("pandas", workspace)
        full = run_step("cohortflow", workspace)
        derive = run_step("derive", workspace)
        quality = run_step("quality", workspace)
        models = run_step("models", workspace)
        corrected_reexport(workspace)
        incremental = run_step("cohortflow", workspace)
        derive_incremental = run_step("derive", workspace)
    finally:
        shutil.rmtree(workspace, ignore_errors=True)
    print(
        f"\n{args.patients} patients, {args.centres} centres: {size_mb:.1f} MB of CSV, "
        f"{raw['rows']} rows (simulated in {simulate_s:.1f} s); {machine()}\n"
    )
    print(f"| {'step':<44} | {'seconds':>8} | {'peak MB':>8} | {'vs raw':>7} |")
    print(f"|{'-' * 46}|{'-' * 10}|{'-' * 10}|{'-' * 9}|")
    for name, r in (
        ("raw DuckDB read_csv (no mapping/validation)", raw),
        ("pandas + Pandera-pandas baseline", baseline),
        ("cohortflow full ingestion", full),
        ("cohortflow incremental (1 re-export)", incremental),
        ("after the full night: snapshot id + views", derive),
        ("after the incremental night: same", derive_incremental),
        ("data quality (every check, report)", quality),
        ("models: fit and publish all", models),
    ):
        ratio = r["seconds"] / raw["seconds"]
        print(f"| {name:<44} | {r['seconds']:>8.2f} | {r['peak_mb']:>8.0f} | {ratio:>6.1f}x |")
    night = full["seconds"] + derive["seconds"]
    small_night = incremental["seconds"] + derive_incremental["seconds"]
    print(
        f"\nincremental / full: {incremental['seconds'] / full['seconds']:.1%} of ingestion, "
        f"{small_night / night:.1%} with what follows loading ({small_night:.1f} s of "
        f"{night:.1f} s); "
        f"pandas baseline / cohortflow full: {baseline['seconds'] / full['seconds']:.2f}x "
        "(target: >= 3x)"
    )
    fits = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in models["fit_seconds"].items())
    print(f"models by step: {fits}" + (f"; failed: {models['failed']}" if models["failed"] else ""))
    print(
        "quality and models run on the whole cohort every night the data changed, "
        "whatever the size of the change"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

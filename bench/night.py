"""The night as a user runs it: ``cohortflow run`` through the command line, timed.

    python -m bench.night [--patients 100000] [--centres 100] [--from DIR] [--logs DIR]

Simulates CSV exports (REDCap-like and French wide styles; or copies the inbox and
mappings of ``--from``, a workspace simulated before), then times, each a real
``cohortflow`` process with its own Prefect server:

* the full night (``run`` on the fresh inbox: ingestion, views, quality, every model);
* a night with nothing new (``run`` again: decided before Prefect starts);
* ``fit`` with nothing to refit;
* the incremental night: one centre re-exports one file with one value changed, and
  ``run`` loads it, checks that centre's quality again and refits what the refit policy
  says (models/policy.py), publishing the copy for readers;
* the same once more (another value changed) while ``cohortflow serve`` runs on the
  workspace, as it does where the nights are scheduled: ``run`` uses serve's Prefect
  server instead of starting its own (flows/server.py);

and prints each step's time from the command's own timed progress lines, with the load
average before and after (the machine may be shared). Nothing is asserted: the figures
go in the issue note.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

KEY = "bench-only-pseudonymisation-key-0123456789"
STEP_DONE = re.compile(r"^\S+ \S+ (?P<step>.+?): done \((?:[\d/]+, )?(?P<seconds>[\d.]+) s\)$")


def cohortflow(workspace: Path, *args: str) -> tuple[float, str, str]:
    """One command in its own process, as a user (or cron) runs it; (seconds, out, err).
    ``err`` starts with the command's start time (epoch seconds) and the 1-minute load
    average then, on a line of their own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COHORTFLOW_", "PREFECT_"))}
    env |= {"COHORTFLOW_PSEUDONYM_KEY": KEY, "COHORTFLOW_SETTLE_SECONDS": "0"}
    wall, load = time.time(), os.getloadavg()[0]
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "cohortflow.cli", *args, "--workspace", str(workspace)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"cohortflow {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return seconds, done.stdout, f"{wall} {load:.2f}\n{done.stderr}"


FLOW_LOG = re.compile(
    r"^(\d\d:\d\d:\d\d\.\d+) \| \w+ +\| Flow run '[^']+' - (Beginning flow run|Finished)"
)


def phases(seconds: float, stderr: str) -> str:
    """Before the flow (CLI, checks, Prefect server, imports), the flow, and after it (logs
    sent, server stopped, summary), from Prefect's own log times."""
    header, *lines = stderr.splitlines()
    day = dt.datetime.fromtimestamp(float(header.split()[0]))
    found = [(m[2], m[1]) for m in map(FLOW_LOG.match, lines) if m]
    begins = [t for what, t in found if what.startswith("Beginning")]
    ends = [t for what, t in found if what == "Finished"]
    if not begins or not ends:
        return "no flow ran"

    def at(clock: str) -> float:
        moment = dt.datetime.combine(day.date(), dt.time.fromisoformat(clock))
        return (moment - day).total_seconds()

    before, flow = at(begins[0]), at(ends[-1]) - at(begins[0])
    after = seconds - before - flow
    return f"before the flow {before:.1f} s, the flow {flow:.1f} s, after it {after:.1f} s"


def steps(stderr: str) -> dict[str, float]:
    """Seconds per step, from the plain progress lines ('<time> <step>: done (... s)')."""
    found: dict[str, float] = {}
    for line in stderr.splitlines():
        match = STEP_DONE.match(line.strip())
        if match:
            found[match["step"]] = found.get(match["step"], 0.0) + float(match["seconds"])
    return found


def change_one_file(workspace: Path, row: int = 0) -> Path:
    """The first REDCap centre re-exports its follow-ups, one pain score changed (in
    ``row``: each change a content never loaded before)."""
    import polars as pl

    path = sorted((workspace / "inbox").glob("*/C*_followup_*.csv"))[0]
    rows = pl.read_csv(path, infer_schema=False)
    target = pl.int_range(pl.len()) == row
    changed = rows.with_columns(
        nprs=pl.when(target & (pl.col("nprs") != "0")).then(pl.lit("0")).otherwise("nprs")
    )
    if changed.equals(rows):
        changed = rows.with_columns(nprs=pl.when(target).then(pl.lit("1")).otherwise("nprs"))
    changed.write_csv(path)
    return path


@contextmanager
def serving(workspace: Path, timeout: float = 120.0) -> Iterator[subprocess.Popen[bytes]]:
    """``cohortflow serve`` on the workspace, as a scheduled deployment runs it, until
    it advertises its Prefect server (flows/server.py); stopped by SIGTERM at the end."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COHORTFLOW_", "PREFECT_"))}
    env |= {"COHORTFLOW_PSEUDONYM_KEY": KEY, "COHORTFLOW_SETTLE_SECONDS": "0"}
    command = [sys.executable, "-m", "cohortflow.cli", "serve", "--workspace", str(workspace)]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + timeout
        while not (workspace / ".prefect" / "serve.api").exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("cohortflow serve did not start its server")
            time.sleep(0.5)
        yield process
    finally:
        process.terminate()
        process.wait(timeout=60)


def prepare(args: argparse.Namespace, workspace: Path) -> str:
    """The workspace's inbox and mappings: copied from ``--from``, else simulated."""
    if args.source:
        for folder in ("inbox", "centres"):
            shutil.copytree(Path(args.source) / folder, workspace / folder)
        return f"copied from {args.source}"
    from simulator.write import simulate_into_workspace

    start = time.perf_counter()
    simulate_into_workspace(
        workspace,
        n_patients=args.patients,
        n_centres=args.centres,
        styles=("redcap", "fr_wide"),
    )
    return f"simulated in {time.perf_counter() - start:.0f} s"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--centres", type=int, default=100)
    parser.add_argument("--from", dest="source", help="a simulated workspace to copy")
    parser.add_argument("--logs", type=Path, help="a folder for each command's stderr")
    args = parser.parse_args()
    workspace = Path(tempfile.mkdtemp(prefix="cohortflow-night-")) / "ws"
    workspace.mkdir()
    try:
        origin = prepare(args, workspace)
        files = [p for p in (workspace / "inbox").rglob("*") if p.is_file()]
        size = sum(p.stat().st_size for p in files) / 2**20
        full = cohortflow(workspace, "run")
        unchanged = cohortflow(workspace, "run")
        fit = cohortflow(workspace, "fit")
        changed = change_one_file(workspace)
        incremental = cohortflow(workspace, "run")
        with serving(workspace):
            change_one_file(workspace, row=1)
            served = cohortflow(workspace, "run")
        warehouse_mb = (workspace / "warehouse.duckdb").stat().st_size / 2**20
    finally:
        shutil.rmtree(workspace.parent, ignore_errors=True)
    nights = (full, unchanged, fit, incremental, served)
    if args.logs:  # each command's progress lines and Prefect's logs, to look into
        args.logs.mkdir(parents=True, exist_ok=True)
        names = ("full", "unchanged", "fit", "incremental", "served")
        for name, (_, out, err) in zip(names, nights, strict=True):
            (args.logs / f"{name}.log").write_text(f"{err}\n{out}", encoding="utf-8")
    report(args, origin, len(files), size, warehouse_mb, *nights)
    print(f"changed file: {changed.relative_to(workspace)}")
    return 0


def report(args, origin, n_files, size, warehouse_mb, full, unchanged, fit, incremental, served):
    from bench.ingest import machine

    print(
        f"\n{args.patients} patients, {args.centres} centres: {n_files} CSV files, "
        f"{size:.0f} MB ({origin}); warehouse {warehouse_mb:.0f} MB; {machine()}\n"
    )
    print(
        f"| {'cohortflow ... (one process each)':<46} | {'seconds':>8} | {'share':>6} "
        f"| {'load':>5} |"
    )
    print(f"|{'-' * 48}|{'-' * 10}|{'-' * 8}|{'-' * 7}|")
    for name, (seconds, _, err) in (
        ("run: full night", full),
        ("run: nothing new (decided before Prefect)", unchanged),
        ("fit: nothing to refit", fit),
        ("run: incremental night (1 file of 1 centre)", incremental),
        ("  the same, `cohortflow serve` running", served),
    ):
        load = float(err.splitlines()[0].split()[1])  # 1-minute load average at its start
        print(f"| {name:<46} | {seconds:>8.1f} | {seconds / full[0]:>6.1%} | {load:>5.2f} |")
    for name, (seconds, _, err) in (
        ("full night", full),
        ("incremental night", incremental),
        ("incremental night, serve running", served),
    ):
        timed = ", ".join(f"{step} {s:.1f} s" for step, s in steps(err).items())
        print(f"\n{name}: {phases(seconds, err)}; by step: {timed}")
    print(f"\nnothing new: {unchanged[1].strip()}\nfit: {fit[1].strip()}")
    carried = [line for line in incremental[1].splitlines() if "carried over" in line]
    print("incremental night's models: " + (" ".join(carried) or "every model refitted"))


if __name__ == "__main__":
    sys.exit(main())

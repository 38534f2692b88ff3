"""Render a report of a workspace in headless Chromium and save a screenshot.

    python scripts/screenshot_report.py [WORKSPACE] [OUT.png] [--page results.html] [--height N]

Defaults: ./cohortflow-data (the demo's workspace), the last run's quality.html, and the
screenshot beside the report. Needs Debian's chromium (`apt-get install chromium`); fails
if the page logs anything to the console (the reports run no script, so any message is an
error) or the screenshot is blank. The results report's test renders it with the same
functions (tests/models/report/test_results_in_chromium.py).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FLAGS = [  # no network, no profile, no background work: a page rendered and nothing else
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
]


def browser() -> str | None:
    """Debian's chromium, if installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _run(page: Path, extra: list[str]) -> tuple[str, list[str]]:
    """Chromium on ``page`` with a fresh profile: its stdout and its console messages."""
    found = browser()
    if found is None:
        raise SystemExit("chromium not found: apt-get install chromium")
    with tempfile.TemporaryDirectory(prefix="cohortflow-chromium-") as profile:
        done = subprocess.run(
            [found, *FLAGS, f"--user-data-dir={profile}", *extra, page.resolve().as_uri()],
            capture_output=True,
            text=True,
            timeout=120,
        )
    if done.returncode != 0:
        raise RuntimeError(f"chromium exited {done.returncode}: {done.stderr[-2000:]}")
    return done.stdout, [line for line in done.stderr.splitlines() if ":CONSOLE" in line]


def dump_dom(page: Path) -> tuple[str, list[str]]:
    """The DOM after rendering, and the console messages the page logged."""
    return _run(page, ["--dump-dom"])


def screenshot(page: Path, out: Path, width: int = 1200, height: int = 2600) -> list[str]:
    """A screenshot of the page's top ``height`` pixels; the console messages."""
    _, console = _run(page, [f"--window-size={width},{height}", f"--screenshot={out.resolve()}"])
    return console


def latest_report(workspace: Path, page: str) -> Path:
    reports = sorted(workspace.glob(f"reports/*/{page}"))
    if not reports:
        raise SystemExit(f"no reports/*/{page} in {workspace}: run `cohortflow demo` first")
    return reports[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workspace", nargs="?", default="cohortflow-data", type=Path)
    parser.add_argument("out", nargs="?", type=Path, help="the PNG (default: beside the page)")
    parser.add_argument("--page", default="quality.html", help="quality.html or results.html")
    parser.add_argument("--height", type=int, default=2600, help="pixels of the page shown")
    args = parser.parse_args()
    report = latest_report(args.workspace.resolve(), args.page)
    out = args.out or report.with_suffix(".png")
    console = screenshot(report, out, height=args.height)
    if console or not out.exists() or out.stat().st_size < 20_000:
        print("\n".join(console) or f"blank or missing screenshot {out}", file=sys.stderr)
        return 1
    print(f"{report} rendered without console messages: {out} ({out.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

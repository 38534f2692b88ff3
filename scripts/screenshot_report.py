"""Render a data-quality report in headless Chromium and save a screenshot.

    python scripts/screenshot_report.py [WORKSPACE] [OUT.png] [HEIGHT]

Defaults: ./cohortflow-data (the demo's workspace), quality.png beside the report, and
a 2600-pixel-high window (`make report-screenshot` takes the top 1100 pixels, the action
panel, into docs/quality-report.png for the README).
Needs Debian's chromium (`apt-get install chromium`); fails if the page logs a console
error or the screenshot is blank.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path


def latest_report(workspace: Path) -> Path:
    reports = sorted(workspace.glob("reports/*/quality.html"))
    if not reports:
        raise SystemExit(f"no reports/*/quality.html in {workspace}: run `cohortflow demo` first")
    return reports[-1]


def main() -> int:
    workspace = Path(sys.argv[1] if len(sys.argv) > 1 else "cohortflow-data").resolve()
    report = latest_report(workspace)
    out = Path(sys.argv[2]).resolve() if len(sys.argv) > 2 else report.with_suffix(".png")
    height = int(sys.argv[3]) if len(sys.argv) > 3 else 2600
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise SystemExit("chromium not found: apt-get install chromium")
    done = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--window-size=1400,{height}",
            "--enable-logging=stderr",
            "--v=0",
            f"--screenshot={out}",
            report.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    errors = [line for line in done.stderr.splitlines() if "CONSOLE" in line and "rror" in line]
    if done.returncode != 0 or not out.exists() or out.stat().st_size < 20_000 or errors:
        print(done.stderr[-2000:], file=sys.stderr)
        return 1
    print(f"{report} rendered without console errors: {out} ({out.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

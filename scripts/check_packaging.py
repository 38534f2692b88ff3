"""Build the wheel and an editable install in a throw-away virtual environment and fail
on any warning the build prints (a setuptools warning reads like a failure to a user).

    python scripts/check_packaging.py          (make check-packaging)

Needs the package index (the build backend, setuptools, is fetched as pip does for any
install); it is a check for a person or CI, not a test.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# pip's own notes about its configured indexes are not the build's
NOT_THE_BUILD = re.compile(r"Location '.*' is ignored|byte-compiling is disabled")
WARNING = re.compile(r"warn|deprecat|ignored|!!", re.IGNORECASE)


def build_output(pip: Path, *args: str) -> str:
    done = subprocess.run(
        [str(pip), *args, "-v", "--no-deps"], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return done.stdout + done.stderr


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="cohortflow-packaging-"))
    try:
        source = work / "src"
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", "HEAD"], capture_output=True, check=True
        ).stdout
        source.mkdir()
        subprocess.run(["tar", "-x", "-C", str(source)], input=archive, check=True)
        venv.create(work / "venv", with_pip=True)
        pip = work / "venv" / "bin" / "pip"
        found = []
        for args in (
            ["wheel", str(source), "-w", str(work / "wheel")],
            ["install", "-e", str(source)],
        ):
            for line in build_output(pip, *args).splitlines():
                if WARNING.search(line) and not NOT_THE_BUILD.search(line):
                    found.append(f"{args[0]}: {line.strip()}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for line in found:
        print(line)
    print(f"{len(found)} warning line(s) in the build output")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())

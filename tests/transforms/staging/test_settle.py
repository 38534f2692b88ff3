"""Files dated in the future: judged by size stability, not by modification time.

A file whose modification time is ahead of the clock (a server clock set wrong, a copy
that kept a bad timestamp) used to look "modified moments ago" every night, and deferred
its centre for good. Beyond a minute of clock skew, such a file is read twice a moment
apart: steady, it loads with a warning; still changing, it is not ready, as before.
"""

from __future__ import annotations

import os
import threading
import time

import pytest

from cohortflow.errors import FileNotReady
from tests.conftest import TEST_KEY
from transforms import warehouse
from transforms.ingest import load_prepared
from transforms.staging.inbox import STABILITY_SECONDS, file_hash, settling
from transforms.staging.mapping import load_centre_mapping
from transforms.staging.order import export_warnings
from transforms.staging.prepare import prepare_centre

pytestmark = pytest.mark.slow  # waits for a file to settle: 2-3 s each

DAY = 86_400


def settled_inbox(ws, centre="C01"):
    """The centre's files, all copied an hour ago (the fixture has just written them)."""
    paths = sorted((ws / "inbox" / centre).iterdir())
    for path in paths:
        os.utime(path, (time.time() - 3600, time.time() - 3600))
    return paths


def test_future_mtime_file_loads_after_a_stability_check_with_a_warning(workspace):
    """It loads a file dated a day ahead after one short wait (not the settle retries),
    and the night's warnings say why it was judged complete."""
    mapping = load_centre_mapping(workspace / "centres" / "C01.yaml")
    ahead = settled_inbox(workspace)[0]
    future = time.time() + DAY
    os.utime(ahead, (future, future))
    started = time.monotonic()
    prepared = prepare_centre(workspace / "inbox", mapping, set(), settle_seconds=30)
    waited = time.monotonic() - started
    assert STABILITY_SECONDS <= waited < STABILITY_SECONDS + 3  # 2 s, not 3.5 min
    con = warehouse.connect(workspace / "warehouse.duckdb")
    warehouse.start_run(con, "r1")
    reports = load_prepared(con, prepared, "r1", TEST_KEY)
    (report,) = [r for r in reports if r.file_name == ahead.name]
    assert report.status == "loaded" and report.rows_loaded > 0
    stamp = time.strftime("%d/%m/%Y %H:%M", time.localtime(future))
    assert export_warnings(reports) == [
        f"C01/{ahead.name}: modification time {stamp} is in the future (is the clock of the "
        "machine that wrote it wrong?): judged complete because its size and modification "
        "time did not change over 2 s"
    ]


def _grow(path, until: float, mtime: float) -> None:
    """A copy in progress on a machine whose clock is ahead: bytes added, mtime ahead."""
    while time.monotonic() < until:
        with path.open("a") as stream:
            stream.write("x\n")
        os.utime(path, (mtime, mtime))
        time.sleep(0.05)


def test_future_mtime_file_still_growing_is_not_ready(tmp_path):
    """It keeps waiting for a file dated in the future whose size still changes."""
    path = tmp_path / "growing.csv"
    path.write_text("a\n")
    future = time.time() + DAY
    os.utime(path, (future, future))
    writer = threading.Thread(target=_grow, args=(path, time.monotonic() + 2.0, future))
    writer.start()
    try:
        settled = settling(tmp_path, 1.0)
    finally:
        writer.join()
    assert settled.waiting == ["growing.csv"] and settled.future == {}


def test_future_mtime_file_still_growing_defers_its_centre(workspace):
    """It raises FileNotReady for the centre (retried, then deferred), as for a recent file."""
    mapping = load_centre_mapping(workspace / "centres" / "C01.yaml")
    path = settled_inbox(workspace)[0]
    future = time.time() + DAY
    writer = threading.Thread(target=_grow, args=(path, time.monotonic() + 3.0, future))
    writer.start()
    try:
        time.sleep(0.2)
        with pytest.raises(FileNotReady) as info:
            prepare_centre(workspace / "inbox", mapping, set(), settle_seconds=30)
    finally:
        writer.join()
    assert info.value.names == [path.name]


def test_future_mtime_of_a_file_already_loaded_costs_no_wait(tmp_path):
    """It does not wait for a file dated in the future whose content is already loaded:
    the wait falls on new files only, so no night grows slower for an old one."""
    path = tmp_path / "old.csv"
    path.write_text("a\n1\n")
    future = time.time() + DAY
    os.utime(path, (future, future))
    started = time.monotonic()
    settled = settling(tmp_path, 30, known={file_hash(path.read_bytes())})
    assert time.monotonic() - started < 0.5
    assert settled.waiting == [] and settled.future == {}


def test_small_clock_skew_and_markers_keep_the_usual_rules(tmp_path):
    """It treats a file a few seconds ahead as just modified (the usual settle wait), and a
    '.done' marker as complete whatever the date, without a stability wait."""
    skewed, marked = tmp_path / "skewed.csv", tmp_path / "marked.csv"
    for path, ahead in ((skewed, 10), (marked, DAY)):
        path.write_text("a\n")
        os.utime(path, (time.time() + ahead, time.time() + ahead))
    (tmp_path / "marked.csv.done").write_text("")
    started = time.monotonic()
    settled = settling(tmp_path, 30)
    assert time.monotonic() - started < 0.5
    assert settled.waiting == ["skewed.csv"] and settled.future == {}

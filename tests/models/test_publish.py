"""Artifacts appear whole or not at all: ``artifacts/<run>/`` exists only with every
parquet file and its manifest; a killed publish leaves a hidden partial folder that the
next publish removes."""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from models import publish
from models.publish import publish_results

ROOT = Path(__file__).resolve().parents[2]
TABLES = {
    "first": pl.DataFrame({"x": [1, 2, 3]}),
    "second": pl.DataFrame({"y": ["a", "b"]}),
}

# A publish killed (SIGKILL-like: no clean-up runs) after writing its first parquet file.
KILLED_PUBLISH = """
import os, sys
from pathlib import Path
import polars as pl
from models.publish import publish_results

written = []
original = pl.DataFrame.write_parquet
def write_then_die(self, path, *args, **kwargs):
    if written:
        os._exit(9)
    written.append(path)
    return original(self, path, *args, **kwargs)
pl.DataFrame.write_parquet = write_then_die
tables = {"first": pl.DataFrame({"x": [1]}), "second": pl.DataFrame({"y": [2]})}
publish_results(Path(sys.argv[1]), tables, run_id="r1", snapshot_id="s", specification={})
"""


def _publish(out_dir: Path, run_id: str) -> Path:
    return publish_results(out_dir, TABLES, run_id=run_id, snapshot_id="snap", specification={})


def test_publish_writes_the_whole_set_and_leaves_nothing_beside_it(tmp_path):
    manifest = _publish(tmp_path / "artifacts" / "r1", "r1")
    assert sorted(p.name for p in manifest.parent.iterdir()) == [
        "first.csv",
        "first.parquet",
        "manifest.json",
        "second.csv",
        "second.parquet",
    ]
    assert json.loads(manifest.read_text())["files"]["first"]["rows"] == 3
    assert json.loads(manifest.read_text())["files"]["first"]["csv"] == "first.csv"
    assert sorted(p.name for p in (tmp_path / "artifacts").iterdir()) == ["r1"]


def test_publish_failing_midway_leaves_no_run_folder(tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(publish, "package_versions", fail)  # after the parquet files
    with pytest.raises(OSError, match="disk full"):
        _publish(tmp_path / "artifacts" / "r1", "r1")
    assert list((tmp_path / "artifacts").iterdir()) == []


def test_killed_publish_leaves_only_a_partial_folder_that_the_next_publish_removes(tmp_path):
    artifacts = tmp_path / "artifacts"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    killed = subprocess.Popen(
        [sys.executable, "-c", KILLED_PUBLISH, str(artifacts / "r1")], env=env, cwd=ROOT
    )
    assert killed.wait() == 9  # exited and reaped: its pid is dead
    assert not (artifacts / "r1").exists()
    partial = artifacts / ".r1.partial"
    assert sorted(p.name for p in partial.iterdir()) == ["first.csv", "first.parquet"]
    owner = (artifacts / ".r1.partial.owner").read_text().split()
    assert owner == [socket.gethostname(), str(killed.pid)]

    _publish(artifacts / "r2", "r2")
    assert sorted(p.name for p in artifacts.iterdir()) == ["r2"]


def test_partial_folder_of_a_live_process_or_another_host_is_left_alone(tmp_path):
    artifacts = tmp_path / "artifacts"
    for name, owner in [
        ("live", f"{socket.gethostname()} {os.getppid()}"),
        ("far", "another-host.example 1"),
    ]:
        (artifacts / f".{name}.partial").mkdir(parents=True)
        (artifacts / f".{name}.partial.owner").write_text(owner)
    _publish(artifacts / "r2", "r2")
    assert sorted(p.name for p in artifacts.iterdir()) == [
        ".far.partial",
        ".far.partial.owner",
        ".live.partial",
        ".live.partial.owner",
        "r2",
    ]


def test_publishing_a_run_again_replaces_its_folder_whole(tmp_path):
    out = tmp_path / "artifacts" / "r1"
    _publish(out, "r1")
    (out / "stale.parquet").write_bytes(b"old")
    _publish(out, "r1")
    assert sorted(p.name for p in out.iterdir()) == [
        "first.csv",
        "first.parquet",
        "manifest.json",
        "second.csv",
        "second.parquet",
    ]


def test_publish_writes_each_table_as_csv_and_describes_its_parquet_columns(tmp_path):
    """It writes a CSV beside each parquet with the same values (floats at a double's
    precision: no arithmetic noise) and puts labels and units in the parquet schema."""
    fixed = pl.DataFrame(
        {"term": ["month"], "estimate": [math.nextafter(-0.080535, 0)], "p_value": [5.96e-27]}
    )
    manifest = publish_results(
        tmp_path / "r1", {"fixed": fixed}, run_id="r1", snapshot_id="s", specification={}
    )
    csv = manifest.parent / "fixed.csv"
    assert csv.read_text().splitlines()[1].startswith("month,-0.080535,0.0000000000000000000000")
    assert pl.read_csv(csv)["estimate"][0] == pytest.approx(fixed["estimate"][0], rel=1e-15)
    schema = pq.read_schema(manifest.parent / "fixed.parquet")
    assert schema.field("p_value").metadata[b"label"] == b"p-value"
    assert schema.field("estimate").metadata[b"unit"] == b"the row's quantity"

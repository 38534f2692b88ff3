"""Files over a limit: rejected with the limit named, before any reader sees their content,
while the centre's other files and the other centres load.

Memory is bounded by what is never done: the tests assert that the CSV and Excel readers
(polars, calamine) are not called on a file over a limit, and read the reader's own
accounting (what ``staging.limits`` measured), never timing or resident memory.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import TEST_KEY
from tests.robustness import damage as d
from transforms import warehouse
from transforms.ingest import load_prepared
from transforms.staging import raw
from transforms.staging.inbox import ExportFile, Rejection, file_hash
from transforms.staging.limits import ReadLimits
from transforms.staging.mapping import load_all_mappings, load_centre_mapping
from transforms.staging.prepare import prepare_centre, stage_export


def _export(path: Path, form: str) -> ExportFile:
    content = path.read_bytes()
    centre = path.parent.name
    return ExportFile(centre, path, form, file_hash(content), len(content))


@pytest.fixture
def hostile_workspace(clean_exports, tmp_path) -> Path:
    """Every centre's exports; C01's follow-up 100,000 columns wide, C02's with a 2 MB
    line, C03's workbook a ZIP bomb."""
    ws = tmp_path / "ws"
    shutil.copytree(clean_exports, ws)
    d.edit_bytes(d.export_of(ws / "inbox" / "C01", "follow_up"), d.wide(100_000))
    d.edit_csv(d.export_of(ws / "inbox" / "C02", "follow_up"), d.set_cell("EN_M3", 2, "9" * 2**21))
    d.edit_bytes(d.export_of(ws / "inbox" / "C03", "follow_up"), d.zip_bomb("Follow-up", 30))
    return ws


def test_files_over_a_limit_are_rejected_alone_and_the_rest_loads(hostile_workspace):
    """It rejects the three hostile files with their limits; every other file loads."""
    ws = hostile_workspace
    con = warehouse.connect(ws / "warehouse.duckdb")
    warehouse.start_run(con, "run-1")
    reports = []
    for mapping in load_all_mappings(ws / "centres").values():
        reports += load_prepared(
            con, prepare_centre(ws / "inbox", mapping, set()), "run-1", TEST_KEY
        )
    rejected = {(r.centre_id, r.form): r.error.split(":")[0] for r in reports if r.error}
    assert rejected == {
        ("C01", "follow_up"): "too many columns",
        ("C02", "follow_up"): "line too long",
        **{
            ("C03", form): "workbook too compressed"
            for form in load_all_mappings(ws / "centres")["C03"].forms
        },
    }
    loaded = {(r.centre_id, r.form) for r in reports if r.status == "loaded"}
    assert ("C01", "inclusion") in loaded and ("C02", "hads") in loaded
    assert {f for c, f in loaded if c == "C04"} == set(
        load_centre_mapping(ws / "centres" / "C04.yaml").forms
    )
    per_centre = dict(
        con.execute("SELECT centre_id, count(*) FROM follow_ups GROUP BY ALL").fetchall()
    )
    assert set(per_centre) == {"C04"}  # the only follow-up file within the limits
    con.close()


def test_the_readers_never_see_a_file_over_a_limit(hostile_workspace, monkeypatch):
    """polars' CSV reader and calamine are not called: nothing of the file is parsed."""
    calls = []
    monkeypatch.setattr(raw.pl, "read_csv", lambda *a, **k: calls.append("csv"))
    monkeypatch.setattr(raw.pl, "read_excel", lambda *a, **k: calls.append("xlsx"))
    for centre in ("C01", "C02", "C03"):
        folder = hostile_workspace / "inbox" / centre
        mapping = d.mapping_of(folder)
        result = stage_export(_export(d.export_of(folder, "follow_up"), "follow_up"), mapping)
        assert isinstance(result, Rejection), result
    assert calls == []


def test_a_file_over_the_size_limit_is_rejected_before_it_is_read(
    clean_exports, tmp_path, monkeypatch
):
    """It checks the size measured at discovery: the file is never opened."""
    ws = tmp_path / "ws"
    shutil.copytree(clean_exports, ws)
    path = d.export_of(ws / "inbox" / "C01", "follow_up")
    export = _export(path, "follow_up")
    mapping = d.mapping_of(path.parent)
    opened = []
    real_open, real_read = Path.open, Path.read_bytes
    monkeypatch.setattr(Path, "open", lambda p, *a, **k: opened.append(p) or real_open(p, *a, **k))
    monkeypatch.setattr(Path, "read_bytes", lambda p: opened.append(p) or real_read(p))
    rejected = stage_export(export, mapping, ReadLimits(max_file_bytes=export.size_bytes - 1))
    assert isinstance(rejected, Rejection) and rejected.error.startswith("file too large")
    assert "COHORTFLOW_MAX_FILE_MB" in rejected.error
    assert path not in opened
    accepted = stage_export(export, mapping, ReadLimits(max_file_bytes=export.size_bytes))
    assert not isinstance(accepted, Rejection) and path in opened

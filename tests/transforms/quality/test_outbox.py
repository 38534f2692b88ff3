"""Outbound files written again only when a centre's lines change (issue 23: a night where
one centre changed read every centre's exports back and wrote 100 workbooks, 36 s at
100,000 patients). Hand-made lines for two centres; the id maps are counted when read."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from transforms.quality.outbox import DIGEST, write_outbox

OPENED = dt.datetime(2017, 11, 1, 2, 0)


def _queries(values: dict[str, str], *, new: bool = False, escalated: bool = False):
    """One open 'to fix' query per centre, its value given."""
    centres = sorted(values)
    return pl.DataFrame({
        "query_id": [f"q-{c}" for c in centres], "centre_id": centres,
        "kind": ["to fix"] * len(centres), "escalated": [escalated] * len(centres),
        "is_new": [new] * len(centres), "nights_open": [3] * len(centres),
        "opened_at": [OPENED] * len(centres), "patient_key": [f"k-{c}" for c in centres],
        "month": [3] * len(centres), "file_name": [f"{c}_followup.csv" for c in centres],
        "source_row": [5] * len(centres), "form": ["follow_up"] * len(centres),
        "field": ["nprs"] * len(centres), "problem": ["out of range"] * len(centres),
        "value": [values[c] for c in centres], "allowed": ["0 to 10"] * len(centres),
    })  # fmt: skip


def _information(centres: list[str]) -> pl.DataFrame:
    """Two information lines per centre (their order is not to matter)."""
    rows = [(c, f"k-{c}", m, "hads") for c in centres for m in (0, 12)]
    return pl.DataFrame(
        rows, schema=["centre_id", "patient_key", "month", "form"], orient="row"
    ).with_columns(field=pl.lit("hads_a1"), problem=pl.lit("missing"))


class IdMaps:
    """The centres' id maps, counting which centres were read back."""

    def __init__(self) -> None:
        self.read: list[str] = []

    def __call__(self, centre: str) -> pl.DataFrame:
        self.read.append(centre)
        return pl.DataFrame({"patient_key": [f"k-{centre}"], "local_id": [f"{centre}-0001"]})


def _write(outbox: Path, queries, information, ids: IdMaps, sources=lambda c: "inbox v1"):
    return write_outbox(outbox, queries, information, ids, sources)


def test_outbox_unchanged_the_night_after_its_queries_opened(tmp_path):
    """It leaves a centre's files alone the night after its queries were opened (new
    then, not any more: the same lines)."""
    outbox, info = tmp_path / "outbox", _information(["C01"])
    _write(outbox, _queries({"C01": "15"}, new=True), info, IdMaps())
    next_night = IdMaps()
    _write(outbox, _queries({"C01": "15"}, new=False), info, next_night)
    assert next_night.read == []


def test_outbox_writes_again_only_the_centre_whose_lines_changed(tmp_path):
    """It reads back and rewrites C02 only when C02's query changes; C01's files stay the
    same files (same modification time), and the information lines' order is no change."""
    outbox, info = tmp_path / "outbox", _information(["C01", "C02"])
    first = IdMaps()
    _write(outbox, _queries({"C01": "15", "C02": "12"}), info, first)
    assert first.read == ["C01", "C02"]
    c01 = outbox / "C01" / "C01_queries.csv"
    before = c01.stat().st_mtime_ns

    again = IdMaps()
    written = _write(outbox, _queries({"C01": "15", "C02": "12"}), info.reverse(), again)
    assert again.read == [] and written["C01"] == outbox / "C01" / "C01_queries.xlsx"

    changed = IdMaps()
    _write(outbox, _queries({"C01": "15", "C02": "11"}), info, changed)
    assert changed.read == ["C02"] and c01.stat().st_mtime_ns == before
    lines = pl.read_csv(outbox / "C02" / "C02_queries.csv", infer_schema=False)
    assert lines.filter(sheet="to fix")["value"].to_list() == ["11"]
    assert lines["patient (your id)"].unique().to_list() == ["C02-0001"]


def test_outbox_writes_again_when_the_sources_change_or_a_file_is_gone(tmp_path):
    """It rewrites a centre whose inbox listing (or mapping) changed, or whose .csv was
    deleted, even with the same lines; with no digest file it writes too."""
    outbox, queries, info = tmp_path / "outbox", _queries({"C01": "15"}), _information(["C01"])
    _write(outbox, queries, info, IdMaps())
    moved = IdMaps()
    _write(outbox, queries, info, moved, sources=lambda c: "inbox v2")
    assert moved.read == ["C01"]
    (outbox / "C01" / "C01_queries.csv").unlink()
    deleted = IdMaps()
    _write(outbox, queries, info, deleted, sources=lambda c: "inbox v2")
    assert deleted.read == ["C01"] and (outbox / "C01" / "C01_queries.csv").is_file()
    (outbox / "C01" / DIGEST).unlink()
    lost = IdMaps()
    _write(outbox, queries, info, lost, sources=lambda c: "inbox v2")
    assert lost.read == ["C01"]


def test_outbox_status_says_open_or_escalated_with_the_opening_date(tmp_path):
    """It words the status without a count of nights nor "new" (either would change every
    line of every centre the next night) and gives the opening date instead."""
    outbox, info = tmp_path / "outbox", _information(["C01"])
    statuses = []
    for flags in ({"new": True}, {}, {"escalated": True}):
        _write(outbox, _queries({"C01": "15"}, **flags), info, IdMaps())
        lines = pl.read_csv(outbox / "C01" / "C01_queries.csv", infer_schema=False)
        (row,) = lines.filter(sheet="to fix").iter_rows(named=True)
        statuses.append(row["status"])
        assert row["opened"] == "2017-11-01"
    assert statuses == ["open", "open", "escalated"]


def test_digests_are_those_of_each_centre_alone(tmp_path):
    """Lines split by centre in one pass give each centre the digest its own lines give
    (sorted on every column, as written by earlier versions: an upgrade rewrites
    nothing), whatever the order of the cohort's lines; a centre with information only
    has its files too."""
    import hashlib

    from transforms.quality.outbox import LAYOUT, keyed_lines

    queries = _queries({"C01": "15", "C02": "11", "C03": "-1"})
    information = _information(["C03", "C01", "C04"])
    outbox = tmp_path / "outbox"
    written = _write(outbox, queries.reverse(), information.sample(fraction=1.0, seed=3), IdMaps())
    assert sorted(written) == ["C01", "C02", "C03", "C04"]
    for centre in written:
        lines = keyed_lines(queries.filter(centre_id=centre), information.filter(centre_id=centre))
        digest = hashlib.sha256(f"{LAYOUT}\ninbox v1\n".encode())
        digest.update(lines.sort(lines.columns, nulls_last=True).write_csv().encode())
        recorded = (outbox / centre / DIGEST).read_text(encoding="utf-8").strip()
        assert recorded == digest.hexdigest(), centre
    c04 = pl.read_csv(outbox / "C04" / "C04_queries.csv")
    assert c04.height == 2 and set(c04["month"]) == {0, 12}

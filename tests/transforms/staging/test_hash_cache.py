"""Content hashes remembered between nights: a file is read only when new, changed or due
for its weekly verification."""

from __future__ import annotations

import os
import time

from transforms.staging import inbox
from transforms.staging.inbox import (
    HashCache,
    discover_centre_files,
    file_hash,
    load_hash_cache,
    refresh_hashes,
    save_hash_cache,
)
from transforms.staging.mapping import load_all_mappings


def _count_reads(monkeypatch) -> list[str]:
    """Record every file hashed (each means a file was read), by its content hash."""
    read: list[str] = []
    real = inbox._hash_file

    def counted(path) -> str:
        read.append(real(path))
        return read[-1]

    monkeypatch.setattr(inbox, "_hash_file", counted)
    return read


def test_hash_cache_reads_only_new_changed_or_due_files(workspace, monkeypatch):
    box = workspace / "inbox"
    n_files = sum(1 for p in box.rglob("*") if p.is_file())
    cache, listing = refresh_hashes(box, HashCache())
    assert len(listing) == len(cache.entries) == n_files
    read = _count_reads(monkeypatch)
    again, same = refresh_hashes(box, cache)
    assert read == [] and same == listing  # nothing new: a stat per file, no read
    changed = box / "C01" / "C01_followup_20170922.csv"
    changed.write_bytes(changed.read_bytes().replace(b"\n", b"\r\n", 1))
    (box / "C02" / next(iter(os.listdir(box / "C02")))).unlink()
    third, listing3 = refresh_hashes(box, again)
    assert read == [file_hash(changed.read_bytes())]  # the changed file only
    assert (
        listing3["C01/C01_followup_20170922.csv"]
        == read[0]
        != listing["C01/C01_followup_20170922.csv"]
    )
    assert len(third.entries) == n_files - 1  # a file gone is forgotten
    read.clear()
    week_later = time.time() + (inbox.VERIFY_AFTER_DAYS + 1) * 86400
    refresh_hashes(box, third, now=week_later)
    assert len(read) == n_files - 1  # every file read again: the periodic verification


def test_hash_cache_spares_discovery_every_read_and_survives_a_bad_file(workspace, tmp_path):
    """Discovery with a full cache reads no file it knows; the cache file round-trips, and
    a damaged one is an empty cache (every file read once), never an error."""
    box = workspace / "inbox"
    cache, _ = refresh_hashes(box, HashCache())
    mapping = load_all_mappings(workspace / "centres")["C01"]
    read: list = []
    original = type(box).read_bytes

    def spy(path):
        read.append(path)
        return original(path)

    type(box).read_bytes = spy
    try:
        with_cache = discover_centre_files(box, mapping, set(), cache)
        without = discover_centre_files(box, mapping, set())
    finally:
        type(box).read_bytes = original
    assert with_cache == without and len(with_cache) > 0
    assert len(read) == len(without)  # the files were read by the run without a cache only
    path = tmp_path / "cache.json"
    save_hash_cache(cache, path)
    assert load_hash_cache(path) == cache
    path.write_text("{not json")
    assert load_hash_cache(path) == HashCache()

"""Whether a night has anything to do, decided before Prefect starts.

A night's inputs are the inbox's export files (by content hash) and the centres' mapping
files; what it does with them depends on the warehouse it starts from. A night that
ended cleanly (every centre read, nothing deferred, quality checked, the copy for
readers published) records a digest of its inputs (``runs.inputs_digest``). When
tonight's inputs have the same digest and no night ran since, tonight would load
nothing, re-stage nothing (no mapping changed) and re-evaluate nothing (no record that
waiting rows depend on was written since that night's re-evaluation): the command says
so and stops before Prefect starts.

The inbox is read through the content-hash cache (``staging.inbox.HashCache``): only
new or changed files are read; the others cost a ``stat``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from cohortflow.settings import Settings
from transforms.staging.inbox import (
    HashCache,
    discover_centre_files,
    file_hash,
    load_hash_cache,
    outside,
    refresh_hashes,
    refused_entries,
    save_hash_cache,
    settling,
)

if TYPE_CHECKING:  # Pandera behind it: not needed to tell whether there is work
    from transforms.staging.mapping import CentreMapping

INBOX_CACHE = Path(".cache") / "inbox-hashes.json"  # in the workspace
DIGEST_VERSION = 1  # bump when what a night reads changes meaning


@dataclass(frozen=True)
class NightInputs:
    """The inbox's hashes (for the night's discovery) and the digest of all inputs."""

    hashes: HashCache
    digest: str
    files: int


def night_inputs(settings: Settings) -> NightInputs:
    """Tonight's inputs: the cache refreshed (new or changed files read) and saved."""
    path = settings.workspace / INBOX_CACHE
    hashes, listing = refresh_hashes(settings.inbox, load_hash_cache(path))
    save_hash_cache(hashes, path)
    return NightInputs(hashes, inputs_digest(listing, settings.centres_config), len(listing))


def inputs_digest(listing: dict[str, str], centres_config: Path) -> str:
    """One hash of every export file (path in the inbox, content) and mapping file."""
    mappings = (
        {p.name: file_hash(p.read_bytes()) for p in sorted(centres_config.iterdir()) if p.is_file()}
        if centres_config.is_dir()
        else {}
    )
    payload = {"version": DIGEST_VERSION, "inbox": sorted(listing.items())}
    payload["mappings"] = sorted(mappings.items())
    return hashlib.sha256(json.dumps(payload).encode()).hexdigest()


def record_inputs(con: duckdb.DuckDBPyConnection, run_id: str, digest: str) -> None:
    """Mark a night that ended cleanly as having read these inputs."""
    con.execute("UPDATE runs SET inputs_digest = ? WHERE run_id = ?", [digest, run_id])


@dataclass(frozen=True)
class LastNight:
    """The last night that read the same inputs, when nothing since needs a new one."""

    run_id: str
    snapshot_id: str | None
    finished_at: object


def unchanged_since(con: duckdb.DuckDBPyConnection, digest: str) -> LastNight | None:
    """The last night, if it read exactly these inputs, ended cleanly, had its quality
    checked and was followed only by runs that change no table (fits); else None."""
    try:
        rows = con.execute(
            """SELECT run_id, kind, status, inputs_digest, snapshot_id, finished_at
               FROM runs ORDER BY run_seq DESC"""
        ).fetchall()
    except duckdb.Error:  # a warehouse from before runs had kinds: let the night decide
        return None
    for run_id, kind, status, recorded, snapshot, finished in rows:
        if kind == "fit" and status in ("completed", "failed"):
            continue  # a refit changes no table
        if kind != "night" or recorded != digest or status not in ("completed", "partial"):
            return None
        return LastNight(run_id, snapshot, finished) if _quality_checked(con, run_id) else None
    return None


def _quality_checked(con: duckdb.DuckDBPyConnection, run_id: str) -> bool:
    try:
        found = con.execute("SELECT count(*) FROM dq_runs WHERE run_id = ?", [run_id]).fetchall()
    except duckdb.Error:
        return False
    return bool(found[0][0])


def centres_to_prepare(
    inbox: Path,
    mappings: list[CentreMapping],
    known: set[tuple[str, str]],
    hashes: HashCache,
    settle_seconds: float,
) -> list[CentreMapping]:
    """The centres with something for tonight: a new or changed export (or one rejected
    before: it is tried again), an entry that is refused (reported every night), or a
    file still being copied (waited for). The others would prepare nothing: no Prefect
    task is made for them (at 500 centres, a task each costs more than the night's work).
    """
    known_hashes = {h for h, _ in known}
    busy = []
    for mapping in mappings:
        folder = inbox / mapping.centre_id
        if (
            refused_entries(inbox, mapping)
            or outside(folder, inbox)
            or discover_centre_files(inbox, mapping, known, hashes)
            or settling(folder, settle_seconds, known=known_hashes, hashes=hashes).waiting
        ):
            busy.append(mapping)
    return busy

"""One key per warehouse (design invariant 7): the key's fingerprint, checked before
anything is written, and the one deliberate way to change keys.

A patient key is an HMAC of centre and local id under the pseudonymisation key
(``transforms.staging.pseudonym``). A night run with another key (a typo in a vault, a
new server) would give every patient a second pseudonym and double the cohort. So the
warehouse keeps the key's fingerprint, an HMAC of a fixed constant under the key (the key
cannot be recovered from it), recorded by the first night; whatever meets the key checks
it before writing (``check_key``; commands that need no key: ``check_reader_key``).

A warehouse made before fingerprints were kept adopts a key only if the key reproduces
the pseudonyms of an export it loaded that is still in the inbox.

``rekey`` moves every pseudonym to a new key in one transaction. Local ids are never
stored, so the old -> new map is rebuilt from the centres' exports in the inbox; a
patient that no export names cannot be moved, and then nothing is.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from cohortflow.errors import CohortflowError, ConfigError, KeyMismatch
from cohortflow.settings import KEY_VARIABLE, NEW_KEY_VARIABLE, Settings
from transforms.staging.inbox import discover_centre_files
from transforms.staging.mapping import CentreMapping, load_all_mappings, load_mappings_isolating
from transforms.staging.prepare import StagedExport, stage_export
from transforms.staging.pseudonym import Pseudonymiser
from transforms.warehouse import digest
from transforms.warehouse.connection import connect, first_row, scalar
from transforms.warehouse.published import publish_read_copy
from transforms.warehouse.runs import finish_run, new_run_id, now, start_run

FINGERPRINT_CONSTANT = b"cohortflow key fingerprint v1"
FINGERPRINT_HEX_CHARS = 16  # 64 bits: tells two keys apart, tells nothing of either

Mappings = Mapping[str, CentreMapping]

_ADVICE = (
    f"set {KEY_VARIABLE} to the key this warehouse was built with; to change keys, rotate "
    f"them deliberately with `cohortflow rekey` (current key in {KEY_VARIABLE}, new key in "
    f"{NEW_KEY_VARIABLE})"
)


def fingerprint(secret: str) -> str:
    """The key's fingerprint: HMAC-SHA256 of a fixed constant under the key, truncated.

    The same key always gives the same fingerprint; without the key nobody can compute
    it, and the key cannot be recovered from it.
    """
    keyed = hmac.new(secret.encode(), FINGERPRINT_CONSTANT, hashlib.sha256)
    return keyed.hexdigest()[:FINGERPRINT_HEX_CHARS]


def stored_fingerprint(con: duckdb.DuckDBPyConnection) -> tuple[str, dt.datetime, str] | None:
    """The warehouse's key fingerprint, when (UTC) and how it was recorded; None if none
    was (a new warehouse, or one made before fingerprints were kept)."""
    if not _table_exists(con, "key_fingerprint"):
        return None  # a warehouse from before fingerprints, opened read-only
    row = first_row(con, "SELECT fingerprint, recorded_at, how FROM key_fingerprint")
    return (row[0], row[1], row[2]) if row else None


def check_key(
    con: duckdb.DuckDBPyConnection,
    secret: str,
    *,
    inbox: Path | None = None,
    mappings: Mappings | None = None,
    record: bool = True,
) -> str:
    """Refuse (``KeyMismatch``) a key other than the warehouse's, before anything is written.

    With a stored fingerprint, the two are compared. Without one, an empty warehouse
    adopts the key; one holding pseudonyms (made before fingerprints were kept) adopts it
    only if it reproduces the patient keys of an export it loaded that is still in
    ``inbox``. ``record``: store the adopted key's fingerprint (a night does; the CLI's
    early check writes nothing). Returns how the key was accepted, for people.
    """
    kept = stored_fingerprint(con)
    if kept is not None:
        if not hmac.compare_digest(kept[0], fingerprint(secret)):
            raise KeyMismatch(
                "the pseudonymisation key differs from the one this warehouse was built with "
                f"(its fingerprint was recorded {kept[1]:%Y-%m-%d %H:%M} UTC); nothing was "
                f"written: {_ADVICE}"
            )
        return "the key matches the warehouse's fingerprint"
    how = _adoption(con, secret, inbox, mappings or {})
    if record:
        _record_fingerprint(con, fingerprint(secret), how)
    return how


def check_reader_key(con: duckdb.DuckDBPyConnection, secret: str) -> None:
    """For commands that need no key (fit, pull): a key configured all the same must be the
    warehouse's (a wrong one means a misconfigured server or vault). Without a stored
    fingerprint there is nothing to compare with; the next night records one."""
    if stored_fingerprint(con) is not None:
        check_key(con, secret, record=False)


def check_workspace_key(settings: Settings, secret: str, *, writer: bool = True) -> None:
    """The key against the workspace's warehouse before a command starts its flow, on a
    read-only connection (so a refusal writes nothing): one line, and no Prefect run.

    ``writer``: the command writes pseudonyms (run, ingest, serve) and is checked as a
    night is; otherwise (fit) only against a stored fingerprint.
    """
    if not settings.warehouse.exists():
        return  # the first night creates the warehouse and records the key
    con = connect(settings.warehouse, read_only=True, memory_limit=settings.duckdb_memory)
    try:
        if not writer:
            check_reader_key(con, secret)
            return
        mappings, _ = load_mappings_isolating(settings.centres_config)  # as the night does
        check_key(con, secret, inbox=settings.inbox, mappings=mappings, record=False)
    finally:
        con.close()


def _adoption(con: duckdb.DuckDBPyConnection, secret: str, inbox, mappings: Mappings) -> str:
    """How a warehouse without a fingerprint accepts the key, or ``KeyMismatch``."""
    if not _holds_pseudonyms(con):
        return "adopted by an empty warehouse"
    verdict = _verify_in_inbox(con, secret, inbox, mappings) if inbox is not None else None
    if verdict is None:
        raise KeyMismatch(
            "this warehouse holds pseudonymised patients but no key fingerprint (it was made "
            "before fingerprints were kept) and no export it loaded is left in the inbox to "
            "check the key against; nothing was written: put one centre's already-loaded "
            "inclusion export back in inbox/<centre>/ and run again"
        )
    source, reproduced = verdict
    if not reproduced:
        raise KeyMismatch(
            "the pseudonymisation key does not reproduce the patient keys this warehouse "
            f"holds (checked against {source}, loaded before key fingerprints were kept); "
            f"nothing was written: {_ADVICE}"
        )
    return f"adopted: it reproduces the patient keys of {source}"


def _verify_in_inbox(
    con: duckdb.DuckDBPyConnection, secret: str, inbox: Path, mappings: Mappings
) -> tuple[str, bool] | None:
    """(which export, whether the key reproduces its patients' keys) for the first export
    the warehouse loaded that is still in the inbox (a centre's inclusion file first);
    None when no loaded export is left.

    A wrong key reproduces no key at all (an 80-bit HMAC), the right one every loaded or
    quarantined patient's: one patient found is proof enough.
    """
    loaded = set(
        con.execute("SELECT file_hash, form FROM ingested_files WHERE status = 'loaded'").fetchall()
    )
    for centre in sorted(mappings):
        for export in discover_centre_files(inbox, mappings[centre], set()):
            if (export.file_hash, export.form) not in loaded:
                continue
            item = stage_export(export, mappings[centre])
            if isinstance(item, StagedExport) and (ids := _local_ids(item)).height:
                keys = set(Pseudonymiser(secret)(ids)["patient_key"])
                return f"{centre}/{export.path.name}", bool(keys & _centre_keys(con, centre))
    return None


def _centre_keys(con: duckdb.DuckDBPyConnection, centre: str) -> set[str]:
    """The patient keys a centre's exports put in the warehouse (loaded or quarantined)."""
    rows = con.execute(
        """SELECT patient_key FROM patients WHERE centre_id = $c
           UNION SELECT patient_key FROM quarantine
           WHERE centre_id = $c AND patient_key IS NOT NULL""",
        {"c": centre},
    ).fetchall()
    return {key for (key,) in rows}


def _local_ids(item: StagedExport) -> pl.DataFrame:
    """(centre_id, patient_id) of a staged file's rows: local ids, in memory only."""
    return (
        item.staged.frame.select(
            pl.lit(item.file.centre_id, pl.String).alias("centre_id"),
            pl.col("patient_id").cast(pl.String),
        )
        .drop_nulls()
        .unique()
    )


def _record_fingerprint(con: duckdb.DuckDBPyConnection, value: str, how: str) -> None:
    """The warehouse's key is now this one (a single row: the current key)."""
    con.execute("DELETE FROM key_fingerprint")
    con.execute("INSERT INTO key_fingerprint VALUES (?, ?, ?)", [value, now(), how])


def key_tables(con: duckdb.DuckDBPyConnection) -> list[tuple[str, bool]]:
    """Every table of the warehouse with a ``patient_key`` column (form tables and their
    history, changes, absent rows, quarantine, views, stale patients, data-quality
    queries, and any table added later), each with whether it has ``centre_id``.

    Read from the catalogue rather than listed, so that no table holding a patient key
    can be forgotten by a rotation.
    """
    return [
        (table, has_centre)
        for table, has_centre in con.execute(
            """SELECT table_name, bool_or(column_name = 'centre_id')
               FROM information_schema.columns
               JOIN information_schema.tables USING (table_catalog, table_schema, table_name)
               WHERE table_type = 'BASE TABLE' AND table_schema = 'main'
                 AND table_catalog = current_database()
               GROUP BY table_name HAVING bool_or(column_name = 'patient_key')
               ORDER BY table_name"""
        ).fetchall()
    ]


def _holds_pseudonyms(con: duckdb.DuckDBPyConnection) -> bool:
    return any(
        first_row(con, f"SELECT 1 FROM {table} WHERE patient_key IS NOT NULL LIMIT 1")
        for table, _ in key_tables(con)
    )


def _table_exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    return bool(
        scalar(
            con,
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_name = ? AND table_catalog = current_database()",
            [table],
        )
    )


@dataclass(frozen=True)
class Rotation:
    """What a key rotation did (also in ``key_rotations`` and its run)."""

    run_id: str
    patient_keys: int  # distinct pseudonyms (quarantined ones included)
    rows: int
    tables: int
    old_fingerprint: str
    new_fingerprint: str
    snapshot_before: str
    snapshot_after: str

    def summary(self) -> str:
        """What the terminal shows: what moved, and what to do next."""
        return (
            f"Re-keyed {self.patient_keys} patient keys ({self.rows} rows in {self.tables} "
            f"tables) in one transaction: key fingerprint {self.old_fingerprint} -> "
            f"{self.new_fingerprint}, snapshot {self.snapshot_before} -> {self.snapshot_after} "
            f"(run {self.run_id}).\nNow put the new key in {KEY_VARIABLE} (your vault, every "
            f"server) and unset {NEW_KEY_VARIABLE}: the old key is refused from now on."
        )


def rotate_key(settings: Settings, secret: str, new_secret: str) -> Rotation:
    """``cohortflow rekey``: the workspace's warehouse moved from ``secret`` to ``new_secret``."""
    mappings = load_all_mappings(settings.centres_config)
    con = connect(settings.warehouse, memory_limit=settings.duckdb_memory)
    try:
        rotation = rekey(con, secret, new_secret, settings.inbox, mappings)
        publish_read_copy(con, settings.warehouse)  # readers never see the old pseudonyms
        return rotation
    finally:
        con.close()


def rekey(
    con: duckdb.DuckDBPyConnection, secret: str, new_secret: str, inbox: Path, mappings: Mappings
) -> Rotation:
    """Move every pseudonym from ``secret`` to ``new_secret`` in one transaction: every
    table holding a patient key rewritten (history, changes and quarantine included, so a
    patient's past follows it), the snapshot digests recomputed, the rotation recorded as
    a run and in ``key_rotations``, the new fingerprint kept.

    Refused, with nothing changed, when ``secret`` is not the warehouse's key, when the
    new key is the same, or when a patient's local id is in no export of the inbox.
    """
    check_key(con, secret, inbox=inbox, mappings=mappings)
    if hmac.compare_digest(fingerprint(new_secret), fingerprint(secret)):
        raise ConfigError(f"{NEW_KEY_VARIABLE} holds the current key: there is nothing to rotate")
    tables = key_tables(con)
    con.register("key_map", _key_map(inbox, mappings, secret, new_secret))
    try:
        moving = _keys_to_move(con, tables)
        return _apply(con, tables, moving, fingerprint(secret), fingerprint(new_secret))
    finally:
        con.unregister("key_map")


def _key_map(inbox: Path, mappings: Mappings, secret: str, new_secret: str) -> pl.DataFrame:
    """old_key -> new_key of every patient that the exports in the inbox name (every form:
    a patient whose inclusion was quarantined is named by its other files). The local ids
    stay in this function's memory; the map holds pseudonyms only."""
    frames = [_local_ids(item) for item in _staged_inbox(inbox, mappings)]
    schema = {"centre_id": pl.String, "patient_id": pl.String}
    ids = pl.concat([pl.DataFrame(schema=schema), *frames]).unique().with_row_index("_pair")
    old = Pseudonymiser(secret)(ids).select("_pair", old_key="patient_key")
    new = Pseudonymiser(new_secret)(ids).select("_pair", new_key="patient_key")
    return old.join(new, on="_pair").drop("_pair")


def _staged_inbox(inbox: Path, mappings: Mappings) -> Iterator[StagedExport]:
    """Every export of every centre in the inbox, loaded before or not, staged one by one."""
    for centre in sorted(mappings):
        for export in discover_centre_files(inbox, mappings[centre], set()):
            item = stage_export(export, mappings[centre])
            if isinstance(item, StagedExport):
                yield item


def _keys_to_move(con: duckdb.DuckDBPyConnection, tables: list[tuple[str, bool]]) -> int:
    """How many patient keys the warehouse holds; refused if any is not in ``key_map``
    (its local id is in no export of the inbox), naming how many per centre, never who."""
    keys = " UNION ALL ".join(
        f"SELECT patient_key, {'centre_id' if has_centre else 'NULL'} AS centre_id FROM {table}"
        for table, has_centre in tables
    )
    per_centre = con.execute(
        f"""WITH k AS (SELECT patient_key, max(centre_id) AS centre_id FROM ({keys})
                       WHERE patient_key IS NOT NULL GROUP BY patient_key)
            SELECT coalesce(k.centre_id, 'no known centre'), count(*),
                   count(*) FILTER (m.old_key IS NULL)
            FROM k LEFT JOIN key_map m ON k.patient_key = m.old_key
            GROUP BY 1 ORDER BY 1"""
    ).fetchall()
    missing = [f"{n} of {centre}" for centre, _, n in per_centre if n]
    if missing:
        raise CohortflowError(
            f"cannot rotate the key: patients ({', '.join(missing)}) are named in no export "
            "left in the inbox, and a pseudonym can only be recomputed from its local id; "
            "nothing was changed: put those centres' loaded exports back in "
            "inbox/<centre>/ and run again"
        )
    return sum(total for _, total, _ in per_centre)


def _apply(
    con: duckdb.DuckDBPyConnection,
    tables: list[tuple[str, bool]],
    patient_keys: int,
    old_fingerprint: str,
    new_fingerprint: str,
) -> Rotation:
    """The rotation's one transaction: a crash or refusal leaves every old key in place."""
    before = digest.snapshot_of(digest.stored(con))
    run_id = new_run_id()
    con.execute("BEGIN TRANSACTION")
    try:
        start_run(con, run_id, kind="rekey")
        rows = sum(
            scalar(
                con,
                f"UPDATE {table} SET patient_key = m.new_key FROM key_map m "
                f"WHERE {table}.patient_key = m.old_key",
            )
            for table, _ in tables
        )
        after = _redigest(con, before)
        rotation = Rotation(
            run_id, patient_keys, rows, len(tables), old_fingerprint, new_fingerprint, before, after
        )
        _record_rotation(con, rotation)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return rotation


def _redigest(con: duckdb.DuckDBPyConnection, before: str) -> str:
    """The snapshot id after the rewrite: the digests hash patient keys, so each form table
    is hashed whole again. Views up to date before stay so (their rows moved too)."""
    con.execute("DELETE FROM table_digests")
    digest.ensure(con)
    after = digest.snapshot_of(digest.stored(con))
    con.execute("UPDATE views_built SET snapshot_id = ? WHERE snapshot_id = ?", [after, before])
    return after


def _record_rotation(con: duckdb.DuckDBPyConnection, r: Rotation) -> None:
    """The new fingerprint, the rotation's record, and its run closed with the snapshot
    after (the run before it holds the snapshot before, also named in its message)."""
    _record_fingerprint(con, r.new_fingerprint, f"rotated from {r.old_fingerprint}")
    con.execute(
        "INSERT INTO key_rotations VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [r.run_id, now(), r.old_fingerprint, r.new_fingerprint, r.patient_keys, r.rows]
        + [r.snapshot_before, r.snapshot_after],
    )
    finish_run(
        con,
        r.run_id,
        status="completed",
        snapshot_id=r.snapshot_after,
        files_loaded=0,
        files_rejected=0,
        rows_loaded=0,
        rows_quarantined=0,
        message=f"key rotation: {r.patient_keys} patient keys re-keyed (snapshot before: "
        f"{r.snapshot_before}, fingerprint {r.old_fingerprint} -> {r.new_fingerprint})",
    )

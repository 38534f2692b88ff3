"""One key per warehouse: the fingerprint recorded by the first night, another key refused
before anything is written, a warehouse from before fingerprints, and key rotation."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import shutil

import duckdb
import polars as pl
import pytest

from cohortflow.errors import CohortflowError, ConfigError, KeyMismatch
from tests.conftest import TEST_KEY
from tests.nights import corrected_export
from tests.nights import night as unchecked_night
from transforms import warehouse
from transforms.ingest import load_prepared
from transforms.staging.mapping import load_all_mappings
from transforms.staging.prepare import prepare_centre
from transforms.staging.pseudonym import patient_key
from transforms.warehouse import digest, keys

pytestmark = pytest.mark.slow  # nights on a simulated workspace, a rotation: 2-7 s each

OTHER_KEY = "a-mistyped-key-from-another-vault"
NEW_KEY = "the-new-key-of-a-deliberate-rotation"
LOCAL_ID = re.compile(r"C0\d-\d{4}")  # the simulator's local ids


def checked_night(ws, run_id: str, key: str = TEST_KEY) -> duckdb.DuckDBPyConnection:
    """A night as the flow runs it: the key checked first, then loaded, closed, views built."""
    con = warehouse.connect(ws / "warehouse.duckdb")
    mappings = load_all_mappings(ws / "centres")
    try:
        warehouse.check_key(con, key, inbox=ws / "inbox", mappings=mappings)
    except KeyMismatch:
        con.close()
        raise
    warehouse.start_run(con, run_id)
    known = warehouse.known_files(con)
    for mapping in mappings.values():
        load_prepared(con, prepare_centre(ws / "inbox", mapping, known), run_id, key)
    snapshot = warehouse.snapshot_id(con)
    warehouse.finish_run(con, run_id, status="completed", snapshot_id=snapshot)
    warehouse.refresh_views(con, snapshot)
    return con


def contents(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
    """Every table of the warehouse, its rows sorted: what "nothing was written" compares."""
    tables = [t for (t,) in con.execute("SHOW TABLES").fetchall()]
    return {t: sorted(con.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in tables}


def file_contents(path) -> dict[str, list[tuple]]:
    with duckdb.connect(str(path), read_only=True) as con:
        return contents(con)


def keys_anywhere(con: duckdb.DuckDBPyConnection, wanted: set[str]) -> set[str]:
    """Which of ``wanted`` appear in any text of any column of any table."""
    tables = [t for (t,) in con.execute("SHOW TABLES").fetchall()]
    con.register("wanted_keys", pl.DataFrame({"k": sorted(wanted)}))
    found: set[str] = set()
    for table in tables:
        for column, *_ in con.execute(f"DESCRIBE {table}").fetchall():
            found |= {
                k
                for (k,) in con.execute(
                    f"""SELECT DISTINCT w.k FROM (SELECT unnest(regexp_extract_all(
                            CAST("{column}" AS VARCHAR), 'p[0-9a-f]{{20}}')) AS k FROM {table}) t
                        JOIN wanted_keys w USING (k)"""
                ).fetchall()
            }
    con.unregister("wanted_keys")
    return found


def all_patient_keys(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {
        key
        for table, _ in keys.key_tables(con)
        for (key,) in con.execute(f"SELECT DISTINCT patient_key FROM {table}").fetchall()
        if key is not None
    }


def test_fingerprint_is_an_hmac_of_a_constant_never_the_key():
    """It is HMAC-SHA256 of the fixed constant, 16 hex digits, different for another key."""
    expected = hmac.new(TEST_KEY.encode(), b"cohortflow key fingerprint v1", hashlib.sha256)
    assert keys.fingerprint(TEST_KEY) == expected.hexdigest()[:16]
    assert keys.fingerprint(OTHER_KEY) != keys.fingerprint(TEST_KEY)
    assert TEST_KEY not in keys.fingerprint(TEST_KEY)


def test_check_key_first_night_records_the_fingerprint(workspace):
    """An empty warehouse adopts the key; the fingerprint, not the key, is stored."""
    con = checked_night(workspace, "r1")
    fingerprint, recorded_at, how = keys.stored_fingerprint(con)
    assert fingerprint == keys.fingerprint(TEST_KEY)
    assert how == "adopted by an empty warehouse"
    assert abs(recorded_at - dt.datetime.now(dt.UTC).replace(tzinfo=None)) < dt.timedelta(minutes=5)
    assert con.execute("SELECT count(*) FROM key_fingerprint").fetchall() == [(1,)]
    stored = str(contents(con))
    assert TEST_KEY not in stored
    assert warehouse.check_key(con, TEST_KEY) == "the key matches the warehouse's fingerprint"
    con.close()


def test_night_with_another_key_refuses_and_writes_nothing(workspace):
    """Invariant 7: the check raises before the run starts; every table is as before."""
    checked_night(workspace, "r1").close()
    path = workspace / "warehouse.duckdb"
    before = file_contents(path)
    with pytest.raises(KeyMismatch) as refused:
        checked_night(workspace, "r2", key=OTHER_KEY)
    message = str(refused.value)
    assert message.startswith("the pseudonymisation key differs from the one this warehouse")
    assert "nothing was written" in message and "cohortflow rekey" in message
    recorded = before["key_fingerprint"][0][1]
    assert f"recorded {recorded:%Y-%m-%d %H:%M} UTC" in message
    assert "\n" not in message and OTHER_KEY not in message and TEST_KEY not in message
    assert file_contents(path) == before
    assert [r[0] for r in before["runs"]] == ["r1"]


def test_pre_fingerprint_warehouse_adopts_the_right_key_and_refuses_a_wrong_one(workspace):
    """A warehouse loaded before fingerprints: a key is adopted only if it reproduces the
    pseudonyms of a loaded export still in the inbox; a wrong one changes nothing."""
    con, _ = unchecked_night(workspace, "r1")  # loads patients, records no fingerprint
    inbox, mappings = workspace / "inbox", load_all_mappings(workspace / "centres")
    assert keys.stored_fingerprint(con) is None
    before = contents(con)
    with pytest.raises(KeyMismatch) as refused:
        warehouse.check_key(con, OTHER_KEY, inbox=inbox, mappings=mappings)
    assert "does not reproduce the patient keys" in str(refused.value)
    assert "C01/C01_inclusion_20170922.csv" in str(refused.value)
    assert contents(con) == before
    how = warehouse.check_key(con, TEST_KEY, inbox=inbox, mappings=mappings)
    assert how == "adopted: it reproduces the patient keys of C01/C01_inclusion_20170922.csv"
    assert keys.stored_fingerprint(con)[0] == keys.fingerprint(TEST_KEY)
    with pytest.raises(KeyMismatch, match="differs from the one this warehouse was built"):
        warehouse.check_key(con, OTHER_KEY, inbox=inbox, mappings=mappings)
    con.close()


def test_pre_fingerprint_warehouse_without_its_exports_refuses_any_key(workspace):
    """No loaded export left to check against: refused (read-only, on a file from before
    the key tables existed), with what to do."""
    unchecked_night(workspace, "r1")[0].close()
    with duckdb.connect(str(workspace / "warehouse.duckdb")) as con:
        con.execute("DROP TABLE key_fingerprint")
        con.execute("DROP TABLE key_rotations")
    shutil.rmtree(workspace / "inbox")
    (workspace / "inbox").mkdir()
    from cohortflow.settings import Settings

    settings = Settings.from_env(workspace)
    with pytest.raises(KeyMismatch) as refused:
        warehouse.check_workspace_key(settings, TEST_KEY)
    assert "no export it loaded is left in the inbox" in str(refused.value)
    assert "put one centre's already-loaded inclusion export back" in str(refused.value)
    tables = file_contents(workspace / "warehouse.duckdb")
    assert "key_fingerprint" not in tables  # read-only: not even the table was created


def test_rekey_moves_every_patient_with_its_history(workspace, small_export_workspace, tmp_path):
    """After a correction and a rotation, the warehouse equals one built under the new key
    from the start (rows, history, changes, absent rows, quarantine, views); no old key
    remains anywhere; the snapshot is recorded; the old key is refused, the new accepted."""
    checked_night(workspace, "r1").close()
    target, new_score, _ = corrected_export(workspace)
    con = checked_night(workspace, "r2")
    old_keys = all_patient_keys(con)
    snapshot_before = warehouse.snapshot_id(con)
    mappings = load_all_mappings(workspace / "centres")
    assert keys_anywhere(con, old_keys) == old_keys  # the scan finds them before

    rotation = warehouse.rekey(con, TEST_KEY, NEW_KEY, workspace / "inbox", mappings)

    assert keys_anywhere(con, old_keys) == set()
    assert rotation.patient_keys == len(old_keys) == len(all_patient_keys(con))
    moved = patient_key(NEW_KEY, "C01", target["record_id"])
    corrections = con.execute(
        "SELECT old_value, new_value FROM changes WHERE patient_key = ? AND natural_key = "
        "'month=3' AND column_name = 'nprs'",
        [moved],
    ).fetchall()
    assert corrections == [(target["nprs"], str(new_score))]
    versions = con.execute(
        "SELECT nprs FROM follow_ups_history WHERE patient_key = ? AND month = 3 "
        "ORDER BY _valid_from",
        [moved],
    ).fetchall()
    assert versions == [(int(target["nprs"]),), (new_score,)]

    fresh = tmp_path / "fresh"
    shutil.copytree(small_export_workspace, fresh)
    checked_night(fresh, "r1", key=NEW_KEY).close()
    corrected_export(fresh)
    built_new = checked_night(fresh, "r2", key=NEW_KEY)
    rotated, expected = contents(con), contents(built_new)
    for table, _ in keys.key_tables(con):
        if not table.startswith("dq_"):
            assert rotated[table] == expected[table], table
    assert rotation.snapshot_after == warehouse.snapshot_id(built_new)
    built_new.close()

    assert rotation.snapshot_before == snapshot_before != rotation.snapshot_after
    assert warehouse.snapshot_id(con) == digest.snapshot_whole(con) == rotation.snapshot_after
    assert digest.verify(con) == []
    run = con.execute(
        "SELECT status, snapshot_id FROM runs WHERE run_id = ?", [rotation.run_id]
    ).fetchall()
    assert run == [("completed", rotation.snapshot_after)]
    assert con.execute("SELECT snapshot_id FROM runs WHERE run_id = 'r2'").fetchall() == [
        (snapshot_before,)
    ]
    assert con.execute(
        "SELECT old_fingerprint, new_fingerprint, patient_keys, snapshot_before, snapshot_after "
        "FROM key_rotations"
    ).fetchall() == [
        (
            keys.fingerprint(TEST_KEY),
            keys.fingerprint(NEW_KEY),
            rotation.patient_keys,
            snapshot_before,
            rotation.snapshot_after,
        )
    ]
    assert con.execute("SELECT snapshot_id FROM views_built").fetchall() == [
        (rotation.snapshot_after,)
    ]
    assert warehouse.content_hash(warehouse.materialise_snapshot(con, rotation.snapshot_after))
    with pytest.raises(KeyMismatch):
        warehouse.check_key(con, TEST_KEY)
    assert warehouse.check_key(con, NEW_KEY) == "the key matches the warehouse's fingerprint"
    con.close()


def test_rekey_refuses_when_a_local_id_is_missing_from_the_inbox(workspace):
    """A patient none of the inbox's exports names cannot be re-keyed: the whole rotation
    is refused, naming how many and which centre, never who; nothing is changed."""
    con = checked_night(workspace, "r1")
    for path in (workspace / "inbox" / "C01").glob("*.csv"):
        rows = pl.read_csv(path, infer_schema=False)
        rows.filter(pl.col("record_id") != "C01-0003").write_csv(path)
    before = contents(con)
    with pytest.raises(CohortflowError) as refused:
        warehouse.rekey(
            con, TEST_KEY, NEW_KEY, workspace / "inbox", load_all_mappings(workspace / "centres")
        )
    message = str(refused.value)
    assert message.startswith("cannot rotate the key: patients (1 of C01) are named in no export")
    assert "nothing was changed" in message and not LOCAL_ID.search(message)
    assert contents(con) == before
    con.close()


def test_rekey_refuses_a_wrong_current_key_or_the_same_key(workspace):
    """Only the warehouse's own key can be rotated, and only to another key."""
    con = checked_night(workspace, "r1")
    inbox, mappings = workspace / "inbox", load_all_mappings(workspace / "centres")
    before = contents(con)
    with pytest.raises(KeyMismatch):
        warehouse.rekey(con, OTHER_KEY, NEW_KEY, inbox, mappings)
    with pytest.raises(ConfigError, match="holds the current key: there is nothing to rotate"):
        warehouse.rekey(con, TEST_KEY, TEST_KEY, inbox, mappings)
    assert contents(con) == before
    con.close()

"""Whether a night has anything to do: the same inputs as the last clean night, or not."""

from __future__ import annotations

from cohortflow.settings import Settings
from tests.nights import night
from transforms import warehouse
from transforms.pending import night_inputs, record_inputs, unchanged_since
from transforms.quality import ensure_quality_tables


def _mark_clean(con, run_id: str, digest: str) -> None:
    """What the flow does at the end of a clean night: its quality run, its inputs."""
    con.execute("UPDATE runs SET kind = 'night' WHERE run_id = ?", [run_id])
    ensure_quality_tables(con)
    con.execute(
        "INSERT INTO dq_runs (run_id, run_seq, checked_at, great_expectations, n_results,"
        " n_breaches) VALUES (?, 1, now(), false, 0, 0)",
        [run_id],
    )
    record_inputs(con, run_id, digest)


def test_pending_sees_nothing_new_until_a_file_or_a_mapping_changes(workspace):
    settings = Settings(workspace)
    before = night_inputs(settings)
    con, _ = night(workspace, "run-1")
    assert unchanged_since(con, before.digest) is None  # the night recorded no inputs yet
    _mark_clean(con, "run-1", before.digest)
    last = unchanged_since(con, before.digest)
    assert last is not None and last.run_id == "run-1"
    assert night_inputs(settings).digest == before.digest  # nothing changed
    mapping = workspace / "centres" / "C03.yaml"
    mapping.write_text(mapping.read_text() + "\n# a comment is a change of file\n")
    assert night_inputs(settings).digest != before.digest
    mapping.write_text(mapping.read_text().replace("\n# a comment is a change of file\n", ""))
    assert night_inputs(settings).digest == before.digest
    new_file = workspace / "inbox" / "C01" / "C01_followup_20171022.csv"
    new_file.write_text("record_id,redcap_event_name,nprs\n")
    assert night_inputs(settings).digest != before.digest
    con.close()


def test_pending_needs_the_last_night_to_be_clean_and_last(workspace):
    """A night after it that recorded no inputs (deferred files, a failed centre), or a
    run of unknown kind, means there is work; a refit after it changes nothing."""
    settings = Settings(workspace)
    digest = night_inputs(settings).digest
    con, snapshot = night(workspace, "run-1")
    _mark_clean(con, "run-1", digest)
    warehouse.start_run(con, "fit-1", kind="fit")
    warehouse.finish_run(con, "fit-1", status="completed", snapshot_id=snapshot)
    assert unchanged_since(con, digest).run_id == "run-1"
    warehouse.start_run(con, "run-2", kind="night")
    warehouse.finish_run(con, "run-2", status="completed", snapshot_id=snapshot)
    assert unchanged_since(con, digest) is None
    con.close()


def test_pending_prepares_only_the_centres_with_something_new(workspace):
    """After a night, no centre has work; a changed export, a partial copy and a link
    each give their centre (and only it) a task."""
    from transforms.pending import centres_to_prepare
    from transforms.staging.mapping import load_all_mappings

    settings = Settings(workspace)
    con, _ = night(workspace, "run-1")
    known = warehouse.known_files(con)
    con.close()
    mappings = list(load_all_mappings(workspace / "centres").values())

    def busy() -> list[str]:
        hashes = night_inputs(settings).hashes
        chosen = centres_to_prepare(workspace / "inbox", mappings, known, hashes, 0.0)
        return [m.centre_id for m in chosen]

    assert busy() == []
    export = workspace / "inbox" / "C01" / "C01_followup_20170922.csv"
    export.write_bytes(export.read_bytes().replace(b"\n", b"\r\n", 1))
    (workspace / "inbox" / "C02" / "next_export.csv.part").write_text("copying")
    (workspace / "inbox" / "C04" / "elsewhere.csv").symlink_to(export)
    assert busy() == ["C01", "C02", "C04"]

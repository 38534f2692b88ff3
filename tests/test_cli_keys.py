"""The command line and the key: another key refused in one line before anything starts,
by every command that meets the warehouse, and `cohortflow rekey`."""

from __future__ import annotations

import duckdb
import pytest

import flows.deployments
from cohortflow.cli import main
from tests.conftest import TEST_KEY
from tests.transforms.warehouse.test_keys import (
    LOCAL_ID,
    NEW_KEY,
    OTHER_KEY,
    all_patient_keys,
    checked_night,
    file_contents,
)

pytestmark = pytest.mark.slow  # the CLI over nights on a simulated workspace: 2-3 s each

DIFFERS = "cohortflow: the pseudonymisation key differs from the one this warehouse was built with"


@pytest.fixture
def built(workspace, monkeypatch):
    """A workspace whose first night ran under TEST_KEY; Prefect's variables, which some
    commands set before they start, restored after the test."""
    for name in ("PREFECT_HOME", "PREFECT_SERVER_ANALYTICS_ENABLED", "DO_NOT_TRACK"):
        monkeypatch.setenv(name, str(workspace / ".prefect") if name == "PREFECT_HOME" else "1")
    monkeypatch.setenv("PREFECT_UI_ENABLED", "false")
    monkeypatch.setenv("COHORTFLOW_SETTLE_SECONDS", "0")
    checked_night(workspace, "r1").close()
    return workspace


def one_line(capsys) -> tuple[str, str]:
    """stdout and the one line of stderr (asserted single, with no traceback)."""
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return out, err.strip()


@pytest.mark.parametrize("command", ["run", "ingest", "serve"])
def test_commands_that_write_refuse_another_key_in_one_line(command, built, capsys, monkeypatch):
    """run, ingest and serve: exit 1, one line on stderr, nothing written, nothing served."""

    def never(settings):
        raise AssertionError("serve reached its schedules with a refused key")

    monkeypatch.setattr(flows.deployments, "runner_deployments", never)
    monkeypatch.setenv("COHORTFLOW_PSEUDONYM_KEY", OTHER_KEY)
    before = file_contents(built / "warehouse.duckdb")
    assert main([command, "--workspace", str(built)]) == 1
    out, err = one_line(capsys)
    assert err.startswith(DIFFERS) and "cohortflow rekey" in err
    assert OTHER_KEY not in out + err and TEST_KEY not in out + err
    assert file_contents(built / "warehouse.duckdb") == before


@pytest.mark.parametrize("command", ["fit", "pull"])
def test_fit_and_pull_refuse_a_wrong_configured_key(command, built, capsys, monkeypatch, tmp_path):
    """They need no key, but one configured and different is refused (nothing written)."""
    monkeypatch.setenv("COHORTFLOW_PSEUDONYM_KEY", OTHER_KEY)
    out_file = tmp_path / "patients.parquet"
    args = [command, "--workspace", str(built)]
    if command == "pull":
        args += ["patients", "--out", str(out_file)]
    before = file_contents(built / "warehouse.duckdb")
    assert main(args) == 1
    assert one_line(capsys)[1].startswith(DIFFERS)
    assert file_contents(built / "warehouse.duckdb") == before and not out_file.exists()


def test_pull_with_the_right_key_or_none_works(built, capsys, monkeypatch, tmp_path):
    """The check only refuses another key: no key, or the warehouse's, pulls as before."""
    pull = ["pull", "patients", "--workspace", str(built), "--out"]
    assert main([*pull, str(tmp_path / "a.csv")]) == 0
    monkeypatch.setenv("COHORTFLOW_PSEUDONYM_KEY", TEST_KEY)
    assert main([*pull, str(tmp_path / "b.csv")]) == 0
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_rekey_rotates_then_only_the_new_key_is_accepted(built, capsys, monkeypatch, tmp_path):
    """`cohortflow rekey` with the current and new keys from the environment: every patient
    re-keyed; then the old key is refused and the new one accepted; no key is printed."""
    monkeypatch.setenv("COHORTFLOW_PSEUDONYM_KEY", TEST_KEY)
    monkeypatch.setenv("COHORTFLOW_NEW_PSEUDONYM_KEY", NEW_KEY)
    with duckdb.connect(str(built / "warehouse.duckdb"), read_only=True) as con:
        moving = len(all_patient_keys(con))
    assert main(["rekey", "--workspace", str(built)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"Re-keyed {moving} patient keys (") and err == ""
    assert "in one transaction" in out and "the old key is refused from now on" in out
    assert TEST_KEY not in out and NEW_KEY not in out
    pull = ["pull", "patients", "--workspace", str(built), "--out", str(tmp_path / "p.csv")]
    assert main(pull) == 1
    assert one_line(capsys)[1].startswith(DIFFERS)
    monkeypatch.setenv("COHORTFLOW_PSEUDONYM_KEY", NEW_KEY)
    assert main(pull) == 0


def test_rekey_without_a_new_key_says_how_to_give_it(built, capsys, monkeypatch):
    """The new key comes from the environment only: never a command-line argument."""
    monkeypatch.setenv("COHORTFLOW_PSEUDONYM_KEY", TEST_KEY)
    assert main(["rekey", "--workspace", str(built)]) == 1
    err = one_line(capsys)[1]
    assert "COHORTFLOW_NEW_PSEUDONYM_KEY" in err and "never on the command line" in err
    with pytest.raises(SystemExit):
        main(["rekey", "--workspace", str(built), "--new-key", NEW_KEY])


def test_rekey_with_an_export_gone_names_the_centre_never_an_id(built, capsys, monkeypatch):
    """A centre's exports removed from the inbox: refused in one line naming how many of
    which centre; the warehouse unchanged."""
    monkeypatch.setenv("COHORTFLOW_PSEUDONYM_KEY", TEST_KEY)
    monkeypatch.setenv("COHORTFLOW_NEW_PSEUDONYM_KEY", NEW_KEY)
    for path in (built / "inbox" / "C05").iterdir():
        path.unlink()
    before = file_contents(built / "warehouse.duckdb")
    with duckdb.connect(str(built / "warehouse.duckdb"), read_only=True) as con:
        (c05,) = con.execute(
            "SELECT count(DISTINCT patient_key) FROM (SELECT patient_key, centre_id FROM "
            "patients UNION ALL SELECT patient_key, centre_id FROM quarantine) "
            "WHERE centre_id = 'C05'"
        ).fetchall()[0]
    assert main(["rekey", "--workspace", str(built)]) == 1
    err = one_line(capsys)[1]
    assert err.startswith(f"cohortflow: cannot rotate the key: patients ({c05} of C05) ")
    assert not LOCAL_ID.search(err)
    assert file_contents(built / "warehouse.duckdb") == before

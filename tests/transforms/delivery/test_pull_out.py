"""Where a pull may write: a new regular file, an existing one only with --force, never a
device, a link, the warehouse or the workspace's own folders; always through a temporary
file in the same folder."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from cohortflow.cli import main
from tests.transforms.delivery.test_pull import recorded_pulls
from transforms.delivery import pull
from transforms.delivery.errors import OutputNotWritable


def test_pull_never_replaces_a_file_unless_forced(con, tmp_path):
    """It refuses an existing output, or an existing card, and replaces both with force."""
    out = tmp_path / "p.csv"
    out.write_text("an analyst's own file\n")
    with pytest.raises(OutputNotWritable, match=r"p.csv exists: a pull never replaces a file"):
        pull.pull(con, "patients", out)
    assert out.read_text() == "an analyst's own file\n"
    out.unlink()
    pull.pull(con, "patients", out).card.write_text("edited card")
    out.unlink()
    with pytest.raises(OutputNotWritable, match=r"p.csv.card.json exists"):
        pull.pull(con, "patients", out)
    assert not out.exists() and recorded_pulls(con) == 1
    forced = pull.pull(con, "patients", out, force=True)
    assert forced.rows > 0 and forced.card.read_text() != "edited card"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.csv", "p.csv.card.json", "warehouse"]


@pytest.mark.parametrize("kind", ["device", "fifo", "symlink", "folder"])
def test_pull_refuses_what_is_not_a_regular_file_even_when_forced(con, tmp_path, kind):
    """/dev/null stays a device, a pipe a pipe, a link a link (os.replace would swap them)."""
    if kind == "device":
        out = Path("/dev/null")
    elif kind == "fifo":
        out = tmp_path / "p.csv"
        os.mkfifo(out)
    elif kind == "symlink":
        target = tmp_path / "elsewhere.csv"
        target.write_text("kept\n")
        out = tmp_path / "p.csv"
        out.symlink_to(target)
    else:
        out = tmp_path / "p.csv"
        out.mkdir()
    before = os.lstat(out).st_mode
    with pytest.raises(OutputNotWritable, match="refusing to write|it is a folder") as refused:
        pull.pull(con, "patients", out, force=True)
    assert "\n" not in str(refused.value)
    assert os.lstat(out).st_mode == before and recorded_pulls(con) == 0
    if kind == "device":
        assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_pull_refuses_the_workspace_s_own_folders(con, tmp_path):
    """It never writes into a folder it is told to keep (the CLI passes the inbox...)."""
    inbox = tmp_path / "inbox" / "C01"
    inbox.mkdir(parents=True)
    with pytest.raises(OutputNotWritable, match=r"inside .*inbox, which cohortflow keeps"):
        pull.pull(con, "patients", inbox / "C01_inclusion_2.csv", protected=[tmp_path / "inbox"])
    assert list(inbox.iterdir()) == []


@pytest.fixture
def workspace_copy(built, tmp_path) -> Path:
    ws = tmp_path / "ws"
    shutil.copytree(built.path.parent, ws)
    return ws


def test_cli_pull_over_an_existing_file_needs_force(workspace_copy, tmp_path, capsys):
    """It exits 1 with one line naming --force; with --force it replaces the file."""
    out = tmp_path / "patients.parquet"
    args = ["pull", "patients", "--workspace", str(workspace_copy), "--out", str(out)]
    assert main(args) == 0
    first = out.read_bytes()
    out.write_bytes(b"changed by hand")
    capsys.readouterr()
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("cohortflow: ") and "(--force)" in err and err.count("\n") == 1
    assert out.read_bytes() == b"changed by hand"
    assert main([*args, "--force"]) == 0
    assert out.read_bytes() == first


def test_cli_pull_refuses_to_write_into_the_inbox(workspace_copy, capsys):
    """An export of the inbox is never overwritten, even with --force."""
    export = next((workspace_copy / "inbox" / "C01").glob("*.csv"))
    content = export.read_bytes()
    export_csv = ["pull", "patients", "--workspace", str(workspace_copy), "--out", str(export)]
    assert main([*export_csv, "--force"]) == 1
    assert "which cohortflow keeps" in capsys.readouterr().err
    assert export.read_bytes() == content

"""Commands that have nothing to do say so before Prefect starts."""

from __future__ import annotations

import re

import pytest

from cohortflow.cli import commands, main
from cohortflow.settings import Settings
from models.suite import MODEL_INPUTS, fit_and_publish_all
from tests.conftest import TEST_KEY
from tests.nights import night
from tests.transforms.test_pending import _mark_clean
from transforms import warehouse
from transforms.pending import night_inputs


@pytest.fixture
def published_night(workspace):
    """A clean night on the workspace: loaded, checked, models published, inputs recorded."""
    digest = night_inputs(Settings(workspace)).digest
    con, snapshot = night(workspace, "run-1")
    warehouse.refresh_views(con, snapshot)
    views = warehouse.analysis_views(con, MODEL_INPUTS)
    fit_and_publish_all(
        views,
        workspace / "artifacts" / "run-1",
        run_id="run-1",
        snapshot_id=snapshot,
        n_rep=10,
        n_starts=1,
    )
    con.execute("UPDATE runs SET models_published = true WHERE run_id = 'run-1'")
    _mark_clean(con, "run-1", digest)
    con.close()
    return workspace, snapshot


def _no_prefect(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("Prefect was started")

    monkeypatch.setattr(commands, "_prefect", refuse)


def test_fit_and_run_with_nothing_to_do_answer_without_prefect(
    published_night, monkeypatch, capsys
):
    workspace, snapshot = published_night
    _no_prefect(monkeypatch)
    monkeypatch.setenv("COHORTFLOW_PSEUDONYM_KEY", TEST_KEY)
    assert main(["fit", "--workspace", str(workspace)]) == 0
    assert f"Snapshot {snapshot} is already published" in capsys.readouterr().out
    assert main(["run", "--workspace", str(workspace)]) == 0
    out = capsys.readouterr().out
    assert "Nothing new since night run-1" in out and "models current" in out
    assert main(["ingest", "--workspace", str(workspace)]) == 0
    assert "Nothing new since night run-1" in capsys.readouterr().out


def test_run_with_a_changed_file_goes_on_to_the_night(published_night, monkeypatch, capsys):
    """One export changed: the shortcut does not answer, the night (Prefect) is started."""
    workspace, _ = published_night
    _no_prefect(monkeypatch)
    monkeypatch.setenv("COHORTFLOW_PSEUDONYM_KEY", TEST_KEY)
    changed = workspace / "inbox" / "C02" / sorted((workspace / "inbox" / "C02").iterdir())[0].name
    changed.write_bytes(changed.read_bytes() + b"\n")
    with pytest.raises(AssertionError, match="Prefect was started"):
        main(["run", "--workspace", str(workspace)])


def test_a_mistyped_workspace_is_named_with_the_closest_folder(tmp_path, capsys):
    (tmp_path / "cohort-data").mkdir()
    assert main(["status", "--workspace", str(tmp_path / "cohort-dta")]) == 1
    err = capsys.readouterr().err
    assert f"workspace {tmp_path / 'cohort-dta'} does not exist" in err
    assert "did you mean 'cohort-data'?" in err


def test_every_subcommand_has_help_with_an_example(capsys):
    from cohortflow.cli.parser import build

    sub = next(a for a in build()._actions if a.dest == "command")
    assert len(sub.choices) == 12
    for name, parser in sub.choices.items():
        text = parser.format_help()
        assert parser.description and re.search(rf"examples:\n  .*cohortflow {name}", text), name
    assert "COHORTFLOW_PSEUDONYM_KEY" in sub.choices["run"].format_help()
    with pytest.raises(SystemExit):
        main(["stauts"])
    assert "did you mean 'status'?" in capsys.readouterr().err

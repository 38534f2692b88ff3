"""The command line: clear one-line errors for users' mistakes, and a demo that reports."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cohortflow.cli import main


def test_run_without_key_says_how_to_set_it(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    (tmp_path / "centres").mkdir()
    assert main(["run", "--workspace", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "COHORTFLOW_PSEUDONYM_KEY" in err


def test_run_reports_a_broken_mapping_file_before_running(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COHORTFLOW_PSEUDONYM_KEY", "k")
    (tmp_path / "centres").mkdir()
    (tmp_path / "centres" / "C01.yaml").write_text("centre_id: C01\nforms: {}\nextra: 1\n")
    assert main(["run", "--workspace", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "C01.yaml" in err and "extra" in err


def test_demo_refuses_to_wipe_a_folder_it_did_not_create(tmp_path, capsys):
    (tmp_path / "precious.csv").write_text("a,b\n")
    assert main(["demo", "--workspace", str(tmp_path)]) == 1
    assert "not a demo workspace" in capsys.readouterr().err
    assert (tmp_path / "precious.csv").exists()


def test_status_before_any_run_says_so(tmp_path, capsys):
    assert main(["status", "--workspace", str(tmp_path)]) == 1
    assert "nothing has run yet" in capsys.readouterr().err


def test_simulate_writes_exports_mappings_and_truth(tmp_path, capsys):
    assert (
        main(["simulate", "--workspace", str(tmp_path), "--patients", "30", "--centres", "4"]) == 0
    )
    assert sorted(p.name for p in (tmp_path / "centres").iterdir()) == [
        "C01.yaml",
        "C02.yaml",
        "C03.yaml",
        "C04.yaml",
    ]
    files = {p.parent.name: p.suffix for p in (tmp_path / "inbox").rglob("*.*")}
    assert files == {"C01": ".csv", "C02": ".csv", "C03": ".xlsx", "C04": ".parquet"}
    assert (tmp_path / "simulation" / "truth.json").exists()
    assert "Simulated 30 patients in 4 centres" in capsys.readouterr().out


def test_profile_drafts_a_mapping_that_loads_and_never_overwrites(
    small_export_workspace, tmp_path, capsys
):
    from transforms.staging.mapping import load_centre_mapping

    files = sorted(str(p) for p in (small_export_workspace / "inbox" / "C02").iterdir())
    out = tmp_path / "C99.yaml"
    assert main(["profile", *files, "--centre", "C99", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "looks like: follow_up" in printed and "Draft mapping written" in printed
    mapping = load_centre_mapping(out)
    assert mapping.centre_id == "C99"
    assert mapping.forms["follow_up"].layout == "wide"
    assert main(["profile", *files, "--centre", "C99", "--out", str(out)]) == 1
    assert "never overwrites" in capsys.readouterr().err
    assert main(["profile", str(tmp_path / "nope.csv")]) == 1
    assert "not a file" in capsys.readouterr().err


@pytest.mark.e2e
def test_demo_prints_a_summary_a_data_manager_can_read(prefect_harness, tmp_path):
    """The real console command, in its own process, against the harness's server."""
    from prefect.settings import PREFECT_API_URL

    ws = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if not k.startswith("COHORTFLOW_")}
    env["PREFECT_API_URL"] = PREFECT_API_URL.value()
    command = [
        sys.executable,
        "-m",
        "cohortflow.cli",
        "demo",
        "--workspace",
        str(ws),
        "--patients",
        "60",
        "--centres",
        "6",
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "36 files from 6 centres, 0 rejected" in out, out
    assert "one-year effect size" in out and "simulator's true mean slope" in out
    assert str(ws / "published" / "warehouse.duckdb") in out  # what analysts open
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert len(list((ws / "artifacts").glob("*/manifest.json"))) == 1
    # run again: the demo starts from a clean workspace each time
    assert subprocess.run(command, env=env, capture_output=True, timeout=300).returncode == 0
    assert len(list((ws / "artifacts").glob("*/manifest.json"))) == 1


def test_pull_writes_the_file_and_card_and_lists_tables(workspace, tmp_path, capsys):
    import polars as pl

    from tests.nights import night

    night(workspace, "run-1")[0].close()
    out = tmp_path / "months.csv"
    args = ["pull", "analysis_patient_months", "--workspace", str(workspace), "--out", str(out)]
    assert main([*args, "--months", "0,12", "--csv-dialect", "fr"]) == 0
    said = capsys.readouterr().out
    assert "rows of analysis_patient_months" in said and said.startswith("Reading the ")
    frame = pl.read_csv(out, separator=";", decimal_comma=True)
    assert set(frame["month"].unique()) <= {0, 12} and frame.height > 0
    assert out.with_name("months.csv.card.json").exists()
    assert main(["pull", "--list", "--workspace", str(workspace)]) == 0
    assert "analysis_patients" in capsys.readouterr().out
    assert main(["pull", "patients", "--workspace", str(workspace)]) == 1
    assert "--out" in capsys.readouterr().err
    excel = tmp_path / "x.xlsx"  # once written silently as parquet under that name
    assert main(["pull", "patients", "--workspace", str(workspace), "--out", str(excel)]) == 1
    error = capsys.readouterr().err.strip()  # one line: why (which state goes to stdout)
    assert "\n" not in error and error.startswith("cohortflow: ")
    assert "x.xlsx: unknown extension .xlsx; pull writes parquet (.parquet), csv" in error
    assert "dta (Stata), sav (SPSS), xpt (SAS transport)" in error
    assert not excel.exists()


def test_status_shows_per_centre_rows_and_data_quality(workspace, capsys):
    import datetime as dt

    from tests.nights import night
    from transforms import warehouse
    from transforms.quality import run_quality

    con, snapshot = night(workspace, "run-1")
    warehouse.refresh_views(con, snapshot)
    run_quality(
        con,
        run_id="run-1",
        workspace_reports=workspace / "reports",
        now=dt.datetime(2017, 10, 1, tzinfo=dt.UTC),
        with_gx=False,
    )
    loaded = dict(
        con.execute("SELECT centre_id, sum(rows_loaded) FROM ingested_files GROUP BY 1").fetchall()
    )
    con.execute(
        "UPDATE runs SET rows_loaded = ?, rows_quarantined = ? WHERE run_id = 'run-1'",
        [sum(loaded.values()), 7],
    )
    files = dict(
        con.execute(
            "SELECT centre_id, count(DISTINCT file_hash) FROM ingested_files GROUP BY 1"
        ).fetchall()
    )
    con.close()
    assert main(["status", "--workspace", str(workspace)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[2].startswith("Last night run-1: completed, started ")
    assert lines[3] == f"  files    {sum(files.values())} from 6 centres, 0 rejected"
    assert (
        lines[4]
        == f"  rows     {sum(loaded.values()):,} loaded, {_quarantined(workspace):,} quarantined"
    )
    c01 = next(line for line in lines if line.startswith("  C01 "))
    assert c01.split()[:2] == ["C01", str(files["C01"])] and f" {loaded['C01']:,} " in c01
    assert "DQ passed" in out and c01.split()[-2].endswith("%")
    assert "Reading the live warehouse" in out  # no night published a copy here
    assert "Mapping files that do not load" not in out
    assert max(len(line) for line in lines[1:]) <= 100  # the first: the path it reads


def _quarantined(workspace) -> int:
    import duckdb

    con = duckdb.connect(str(workspace / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute("SELECT rows_quarantined FROM runs").fetchall()[0][0] or 0
    finally:
        con.close()


def test_status_names_a_mapping_that_no_longer_loads(workspace, capsys):
    """It lists a centre whose mapping file broke since the last night, with the error."""
    from tests.nights import night

    night(workspace, "run-1")[0].close()
    (workspace / "centres" / "C02.yaml").write_text("centre_id: C02\nforms: [\n")
    assert main(["status", "--workspace", str(workspace)]) == 0
    out = capsys.readouterr().out
    broken = out.split("Mapping files that do not load")[1].strip().splitlines()
    assert len(broken) == 2 and broken[1].strip().startswith("C02: ")

"""Bad settings are refused by ``Settings.from_env`` in one line, never a traceback."""

from __future__ import annotations

import sys

import pytest

from cohortflow.cli import main
from cohortflow.errors import ConfigError
from cohortflow.settings import Settings

BAD = [
    ("COHORTFLOW_NIGHTLY_CRON", "61 2 * * *", "'0 2 * * *'"),
    ("COHORTFLOW_NIGHTLY_CRON", "every night", "'0 2 * * *'"),
    ("COHORTFLOW_NIGHTLY_CRON", "H 2 * * *", "'0 2 * * *'"),  # Prefect refuses hashed fields
    ("COHORTFLOW_TIMEZONE", "Europe/Pariss", "'Europe/Paris'"),
    ("COHORTFLOW_TIMEZONE", "../etc/passwd", "'Europe/Paris'"),
    ("COHORTFLOW_MAX_WORKERS", "0", "e.g. 4"),
    ("COHORTFLOW_CENTRES_PER_BATCH", "0", "e.g. 100"),
    ("COHORTFLOW_MAX_WORKERS", "four", "e.g. 4"),
    ("COHORTFLOW_DUCKDB_MEMORY", "1GB'; DROP TABLE patients; SELECT '1", "such as 1GB"),
    ("COHORTFLOW_DUCKDB_MEMORY", "lots", "such as 1GB"),
    ("COHORTFLOW_MAX_FILE_MB", "0", "e.g. 500"),
    ("COHORTFLOW_MAX_UNCOMPRESSED_MB", "big", "e.g. 2000"),
    ("COHORTFLOW_MAX_COMPRESSION_RATIO", "0.5", "e.g. 100"),
    ("COHORTFLOW_MAX_COLUMNS", "-1", "e.g. 2000"),
    ("COHORTFLOW_MAX_LINE_KB", "0", "e.g. 1000"),
    ("COHORTFLOW_MAX_ROWS", "1e6", "e.g. 5000000"),
]


@pytest.mark.parametrize(("variable", "value", "example"), BAD)
def test_settings_refuse_a_bad_value_naming_variable_value_and_example(
    tmp_path, variable, value, example
):
    """It raises ConfigError whose one line names the variable, the value and an example."""
    with pytest.raises(ConfigError) as refused:
        Settings.from_env(tmp_path, {variable: value})
    message = str(refused.value)
    assert f"{variable}={value!r}" in message and example in message and "\n" not in message


@pytest.mark.parametrize(("variable", "value", "example"), BAD)
def test_cli_reports_a_bad_setting_in_one_line(
    tmp_path, capsys, monkeypatch, variable, value, example
):
    """It exits 1 with one stderr line and no traceback, before Prefect is imported."""
    monkeypatch.setenv(variable, value)
    (tmp_path / "centres").mkdir()
    assert main(["run", "--workspace", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    assert err.startswith(f"cohortflow: {variable}={value!r}")


def test_settings_accept_valid_schedules_and_zones(tmp_path):
    """It keeps what Prefect accepts: five fields with ranges and steps, any IANA zone."""
    env = {
        "COHORTFLOW_NIGHTLY_CRON": " */15 1-5 * * 1-5 ",
        "COHORTFLOW_TIMEZONE": "America/Sao_Paulo",
        "COHORTFLOW_MAX_WORKERS": "1",
        "COHORTFLOW_CENTRES_PER_BATCH": "1",
    }
    settings = Settings.from_env(tmp_path, env)
    assert settings.nightly_cron == "*/15 1-5 * * 1-5"
    assert settings.timezone == "America/Sao_Paulo"
    assert (settings.max_workers, settings.centres_per_batch) == (1, 1)


def test_cron_check_does_not_import_prefect(tmp_path):
    """It validates with Prefect's vendored croniter without importing ``prefect``, whose
    settings must be configured first (``configure_prefect``)."""
    import subprocess

    code = (
        "import sys; from cohortflow.settings import Settings; "
        "Settings.from_env('.', {'COHORTFLOW_NIGHTLY_CRON': '0 3 * * *'}); "
        "print('prefect' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_settings_built_in_code_are_checked_too(tmp_path):
    """It refuses a memory size that would reach SQL unchecked, and limits below 1, in
    ``Settings(...)`` and ``dataclasses.replace`` as in ``from_env``."""
    import dataclasses

    with pytest.raises(ConfigError, match="^COHORTFLOW_DUCKDB_MEMORY=\"1GB'; DROP"):
        Settings(tmp_path, duckdb_memory="1GB'; DROP TABLE patients; SELECT '1")
    with pytest.raises(ConfigError, match="^COHORTFLOW_MAX_ROWS=0 must be positive"):
        dataclasses.replace(Settings(tmp_path), max_rows=0)
    assert Settings(tmp_path, duckdb_memory="512 MiB").duckdb_memory == "512 MiB"


def test_warehouse_memory_limit_is_checked_and_bound_never_spliced(tmp_path):
    """The injection that dropped ``patients`` is refused before the file is opened; a
    valid size is set (bound as a parameter)."""
    from transforms import warehouse

    path = tmp_path / "w.duckdb"
    with pytest.raises(ConfigError, match="memory_limit="):
        warehouse.connect(path, memory_limit="1GB'; DROP TABLE patients; SELECT '1")
    assert not path.exists()
    con = warehouse.connect(path, memory_limit="256MB")
    limit = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    tables = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'patients'")
    assert limit == "244.1 MiB" and tables.fetchone() == (1,)
    con.close()

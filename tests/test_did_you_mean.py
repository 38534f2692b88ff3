"""A mistyped name is answered with the closest valid one, and only a close one."""

from __future__ import annotations

import polars as pl
import pytest

from cohortflow.errors import ConfigError, did_you_mean
from transforms.delivery.errors import UnknownColumn, UnknownTable
from transforms.delivery.query import make_query, select_rows
from transforms.staging.mapping import load_centre_mapping

FRAME = pl.DataFrame({"patient_key": ["a"], "centre_id": ["C01"], "month": [0], "nprs": [4]})


def test_pull_suggests_the_table_and_column_meant():
    with pytest.raises(UnknownTable, match=r"did you mean 'follow_ups'\?$"):
        make_query("folow_ups")
    with pytest.raises(UnknownColumn, match=r"did you mean 'nprs'\?$"):
        select_rows(FRAME, make_query("follow_ups", columns=["npsr"]))
    with pytest.raises(UnknownTable) as far:
        make_query("visits")
    assert "did you mean" not in str(far.value)  # nothing close: no guess


def test_pull_names_a_centre_written_another_way_but_never_a_neighbour():
    """'c1' is C01; C09 is not C01's typo: centre ids differ by one digit by design."""
    _, warnings = select_rows(FRAME, make_query("follow_ups", centres=["c1"]))
    assert warnings[0] == "no rows in follow_ups for centre c1; did you mean 'C01'?"
    _, [warning] = select_rows(FRAME, make_query("follow_ups", centres=["C09", "C01"]))
    assert warning == "no rows in follow_ups for centre C09"


def test_mapping_file_names_the_key_meant(tmp_path):
    path = tmp_path / "C01.yaml"
    path.write_text(
        "centre_id: C01\nforms:\n  follow_up:\n    file_patern: '*.csv'\n    format: {kind: csv}\n"
    )
    with pytest.raises(ConfigError) as error:
        load_centre_mapping(path)
    assert "forms.follow_up.file_patern: Extra inputs are not permitted; did you mean " in str(
        error.value
    )
    assert "'file_pattern'?" in str(error.value)


def test_did_you_mean_is_empty_without_a_close_choice():
    assert did_you_mean("stauts", ["status", "run"]) == "; did you mean 'status'?"
    assert did_you_mean("zzz", ["status", "run"]) == ""

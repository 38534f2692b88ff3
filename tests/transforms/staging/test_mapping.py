"""Centre mapping files: a mistake is reported with the file and the field."""

from __future__ import annotations

import pytest

from cohortflow.errors import ConfigError
from transforms.staging.mapping import load_centre_mapping

GOOD = """
centre_id: C09
forms:
  follow_up:
    file_pattern: "*_followup_*.csv"
    columns: {patient_id: record_id, month: event, nprs: nprs}
"""


def test_load_centre_mapping_accepts_a_minimal_file(tmp_path):
    path = tmp_path / "C09.yaml"
    path.write_text(GOOD)
    mapping = load_centre_mapping(path)
    assert mapping.forms["follow_up"].format.delimiter == ","


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (GOOD.replace("nprs: nprs", "pain: nprs"), "unknown canonical column(s) ['pain']"),
        (GOOD.replace("follow_up:", "followup:"), "unknown form 'followup'"),
        (GOOD + "    format: {delimiter: ';;'}\n", "forms.follow_up.format.delimiter"),
        (GOOD.replace("centre_id: C09", "centre_id: C10"), "does not match the file name"),
        ("centre_id: [", "cannot read the mapping file"),
    ],
)
def test_load_centre_mapping_names_file_and_field(tmp_path, text, message):
    path = tmp_path / "C09.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_centre_mapping(path)
    assert str(path) in str(info.value)
    assert message in str(info.value)

"""A date stamp in export file names drafted as the form's export_date option."""

from __future__ import annotations

import datetime as dt

import pytest
import yaml

from tests.transforms.onboarding.samples import write_export
from transforms.onboarding.draft import draft_mapping_yaml
from transforms.onboarding.stamps import export_date_draft
from transforms.staging.inbox import ExportFile
from transforms.staging.mapping import CentreMapping
from transforms.staging.order import dated

FOLLOW_UP = "N° patient;EN_M0;EN_M1\nP-01;5;4\nP-02;6;6\n"


@pytest.mark.parametrize(
    ("name", "pattern", "fmt", "ambiguous"),
    [
        ("suivi_C02_15102017.csv", r"_(\d{8})\.csv$", "%d%m%Y", False),
        ("suivi_C02_01112017.csv", r"_(\d{8})\.csv$", "%d%m%Y", True),
        ("C01_followup_20170922.csv", r"_(\d{8})\.csv$", "%Y%m%d", False),
        ("patients-2017-03-01.tsv", r"-(\d{4}-\d{2}-\d{2})\.tsv$", "%Y-%m-%d", False),
    ],
)
def test_export_date_draft_reads_the_stamp_and_says_when_it_is_ambiguous(
    name, pattern, fmt, ambiguous
):
    """It drafts the pattern and format of a name's date stamp, flagging day/month doubt."""
    option, comment = export_date_draft(name)
    assert option == {"from": "file_name", "pattern": pattern, "format": fmt}
    assert comment.startswith("TODO-check: is ")
    assert ("ambiguous, it also reads as %m%d%Y" in comment) is ambiguous


@pytest.mark.parametrize("name", ["sf12_export.csv", "inclusion_2017.csv", "x_99999999.csv"])
def test_export_date_draft_leaves_names_without_a_date_alone(name):
    """It drafts nothing when the name holds no plausible date."""
    assert export_date_draft(name) is None


def test_draft_mapping_yaml_declares_the_export_date_its_reader_reads_back(tmp_path):
    """Its draft of a day-first stamped export loads, and the date it declares is read."""
    path = write_export(tmp_path, "suivi_C09_15102017.csv", FOLLOW_UP, "latin-1")
    draft = draft_mapping_yaml("C09", [path])
    assert (
        r"    export_date: {from: 'file_name', pattern: '_(\d{8})\.csv$', format: '%d%m%Y'}"
        "  # TODO-check: is 15102017 the day the file was exported? (it orders the files)"
    ) in draft.splitlines()
    mapping = CentreMapping.model_validate(yaml.safe_load(draft)).forms["follow_up"]
    export = ExportFile("C09", path, "follow_up", "h", path.stat().st_size)
    assert dated(export, path.read_bytes(), mapping).export_date == dt.date(2017, 10, 15)

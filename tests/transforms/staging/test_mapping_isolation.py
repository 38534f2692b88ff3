"""One broken mapping file isolates its centre: the others load (invariant 4)."""

from __future__ import annotations

import shutil

from transforms.staging.mapping import load_mappings_isolating


def test_load_mappings_isolating_keeps_good_centres_and_names_the_broken_one(workspace):
    """It returns every valid mapping, and for each broken file one line: file, field, rule."""
    centres = workspace / "centres"
    good = (centres / "C02.yaml").read_text()
    (centres / "C02.yaml").write_text(good + "colour: blue\n")  # a field no mapping has
    shutil.copy(centres / "C01.yaml", centres / "C09.yaml")  # centre_id says C01
    (centres / "C10.yaml").write_text("centre_id: C10\nforms: [unclosed\n")  # not YAML

    valid, broken = load_mappings_isolating(centres)

    assert sorted(valid) == ["C01", "C03", "C04", "C05", "C06"]
    assert sorted(broken) == ["C02", "C09", "C10"]
    assert all("\n" not in line for line in broken.values())
    assert broken["C02"].startswith(f"{centres / 'C02.yaml'}: invalid mapping: colour: ")
    assert "does not match the file name 'C09'" in broken["C09"]
    assert "cannot read the mapping file" in broken["C10"]


def test_load_mappings_isolating_on_good_files_equals_the_strict_loader(workspace):
    """It changes nothing when every file is valid."""
    from transforms.staging.mapping import load_all_mappings

    valid, broken = load_mappings_isolating(workspace / "centres")
    assert broken == {} and valid == load_all_mappings(workspace / "centres")

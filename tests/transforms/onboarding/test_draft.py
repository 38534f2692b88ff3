"""A new centre's mapping file drafted as YAML with TODO comments, and its file patterns."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from schemas.forms import FORMS
from simulator.write import simulate_into_workspace
from tests.transforms.onboarding.samples import write_export
from transforms.onboarding.draft import draft_mapping_yaml, file_pattern
from transforms.staging.mapping import CentreMapping, CsvFormat, load_centre_mapping
from transforms.staging.read import stage_file


@pytest.fixture(scope="module")
def simulated(tmp_path_factory) -> Path:
    """Four simulated centres: C01 REDCap-style CSV, C02 French wide CSV, C03 a workbook
    of one sheet per form, C04 parquet."""
    root = tmp_path_factory.mktemp("profiled")
    simulate_into_workspace(root, n_patients=20, n_centres=4, seed=1, fault_rate=0)
    return root


@pytest.mark.parametrize(
    ("name", "centre", "pattern"),
    [
        ("suivi_C02_22092017.csv", "C02", "suivi_C02_*.csv"),
        ("C01_inclusion_20170922.csv", "C01", "C01_inclusion_*.csv"),
        ("patients-2017-03-01.tsv", "C77", "patients-*.tsv"),
        ("sf12_export.csv", "C01", "sf12_export.csv"),
        ("export_v2_2017.09.22_1530.csv", "X", "export_v2_*.csv"),
    ],
)
def test_file_pattern_replaces_stamps(name, centre, pattern):
    """It turns date stamps and lone numbers into '*', keeping the centre id and 'sf12'."""
    assert file_pattern(name, centre_id=centre) == pattern


def test_draft_mapping_yaml_of_an_inclusion_file_validates(tmp_path):
    """Its draft of a simple inclusion file loads as a CentreMapping, comments and all."""
    text = (
        "N° patient;Sexe;Âge;Diagnostic;Poids (kg);Date d'inclusion\n"
        "P-01;H;50;neuropathique;70,2;28/07/2016\n"
        "P-02;F;46;fibromyalgie;69,4;08/09/2016\n"
        "P-03;F;61;SDRC;ND;26/07/2016\n"
    )
    path = write_export(tmp_path, "inclusion_C09_22092017.csv", text, "latin-1")
    draft = draft_mapping_yaml("C09", [path])
    assert "# TODO" in draft
    mapping = CentreMapping.model_validate(yaml.safe_load(draft))
    form = mapping.forms["inclusion"]
    assert mapping.centre_id == "C09" and list(mapping.forms) == ["inclusion"]
    assert form.file_pattern == "inclusion_C09_*.csv"
    assert form.format == CsvFormat(delimiter=";", decimal=",", encoding="latin-1")
    assert form.columns == {
        "patient_id": "N° patient",
        "sex": "Sexe",
        "age": "Âge",
        "pain_diagnosis": "Diagnostic",
        "weight_kg": "Poids (kg)",
        "inclusion_date": "Date d'inclusion",
    }
    assert form.codes["sex"] == {"F": "F", "H": "M"}
    assert form.codes["pain_diagnosis"]["SDRC"] == "crps"
    assert form.date_formats == {"inclusion_date": "%d/%m/%Y"}
    assert form.missing_values == ["", "NA", "ND"]


def test_draft_mapping_yaml_comments_what_a_person_must_decide(tmp_path):
    """It flags ambiguous dates, guessed codes, identifiers and unknown columns in comments."""
    text = (
        "record_id,sex,telephone,NIR,date_naissance,incl_date,remarque\n"
        "A1,1,0612345678,1850775123456,01/02/1960,03/04/2016,ok\n"
        "A2,2,0712345678,2850775123456,03/04/1970,05/06/2016,x\n"
    )
    draft = draft_mapping_yaml("C10", [write_export(tmp_path, "inclusion_2017.csv", text)])
    assert "# DO NOT MAP: 'telephone' looks like a phone number" in draft
    assert "# DO NOT MAP: 'NIR' looks like a social security number" in draft
    assert "DO NOT MAP: 'date_naissance'" not in draft  # read to compute the age only
    assert "#   inclusion_2017.csv: telephone, NIR\n" in draft
    assert "inclusion_date: '%d/%m/%Y'  # TODO: ambiguous, every value also reads as %m/%d/%Y" in (
        draft
    )
    assert "sex:  # TODO-check: guessed 1 = M, 2 = F" in draft
    assert "# TODO: 'remarque': no canonical column recognised" in draft
    assert "# TODO: not found in the file: pain_diagnosis, weight_kg" in draft
    form = CentreMapping.model_validate(yaml.safe_load(draft)).forms["inclusion"]
    assert set(form.columns.values()) == {"record_id", "sex", "incl_date"}
    assert yaml.safe_load(draft)["forms"]["inclusion"]["derived"] == {
        "age": {
            "from": "birth_date",
            "column": "date_naissance",
            "format": "%d/%m/%Y",
            "at": "inclusion_date",
        }
    }
    assert "read only to compute it, and never stored" in draft
    assert "0612345678" not in draft and "1850775123456" not in draft
    assert "1960" not in draft and "1970" not in draft  # no birth date value, not even a year


def test_draft_mapping_yaml_quotes_awkward_header_names(tmp_path):
    """It writes header names with quotes, backslashes, '#' and ': ' so YAML reads them back."""
    header = ['N° "patient"', "Poids (kg: 'x' \\ #)", "Date d'inclusion", "Sexe\u2028", "Âge"]
    text = ";".join(header) + "\nP1;70,5;01/02/2016;F;50\nP2;80,5;13/02/2016;M;61\n"
    draft = draft_mapping_yaml("C12", [write_export(tmp_path, "inclusion.csv", text)])
    columns = CentreMapping.model_validate(yaml.safe_load(draft)).forms["inclusion"].columns
    assert columns == {
        "patient_id": header[0],
        "weight_kg": header[1],
        "inclusion_date": header[2],
        "sex": header[3],
        "age": header[4],
    }


def test_draft_mapping_yaml_skips_other_kinds_with_a_todo(tmp_path):
    """It says which files it could not profile instead of failing."""
    files = [
        write_export(tmp_path, "C11_export_2017.xlsx", "not really a workbook"),
        write_export(tmp_path, "C11_pain_2017.parquet", "not really parquet"),
        write_export(tmp_path, "C11_notes.csv", "texte\nrien\n"),
        write_export(tmp_path, "C11_old.xls", "old"),
        tmp_path / "C11_missing.csv",
    ]
    draft = draft_mapping_yaml("C11", files)
    assert (
        "# TODO: C11_export_2017.xlsx was not profiled (unreadable XLSX: not an .xlsx "
        "workbook (a ZIP archive))" in draft
    )
    assert "# TODO: C11_pain_2017.parquet was not profiled (unreadable parquet:" in draft
    assert "# TODO: C11_notes.csv: no canonical form recognised" in draft
    assert "C11_old.xls was not profiled (XLS files (the old Excel format) are not" in draft
    assert "C11_missing.csv was not profiled (cannot read it: No such file" in draft
    assert CentreMapping.model_validate(yaml.safe_load(draft)).forms == {}


def test_draft_mapping_yaml_agrees_with_the_simulated_truth(simulated):
    """On simulated REDCap, French, workbook and parquet centres, what it maps is what the
    true mapping says."""
    for centre in ("C01", "C02", "C03", "C04"):
        files = sorted((simulated / "inbox" / centre).iterdir())
        draft = CentreMapping.model_validate(yaml.safe_load(draft_mapping_yaml(centre, files)))
        truth = load_centre_mapping(simulated / "centres" / f"{centre}.yaml")
        assert set(draft.forms) == set(truth.forms) == set(FORMS)
        for name, form in draft.forms.items():
            true = truth.forms[name]
            assert (form.file_pattern, form.format, form.layout) == (
                true.file_pattern,
                true.format,
                true.layout,
            )
            assert form.columns.items() <= true.columns.items()
            assert form.id_columns.items() <= true.id_columns.items()
            assert form.wide_columns == true.wide_columns
            assert form.date_formats == true.date_formats
            for column, codes in form.column_codes().items():
                assert codes.items() <= true.codes[column].items(), (name, column)


def test_draft_mapping_yaml_reads_the_files_it_profiled(simulated):
    """Its draft reads the French wide and the REDCap files without a cast failure."""
    cases = [("C02", "follow_up", "suivi_C02_"), ("C01", "inclusion", "C01_inclusion_")]
    for centre, form_name, prefix in cases:
        files = sorted((simulated / "inbox" / centre).iterdir())
        draft = CentreMapping.model_validate(yaml.safe_load(draft_mapping_yaml(centre, files)))
        path = next(p for p in files if p.name.startswith(prefix))
        staged = stage_file(path.read_bytes(), path, draft.forms[form_name], FORMS[form_name])
        assert staged.rows_read > 0
        assert staged.cast_failures.height == 0


def test_profile_closing_lines_say_what_to_do_next(tmp_path, capsys):
    """It writes the draft where asked and says the next steps, naming the draft."""
    from cohortflow.cli import main

    text = "id;sexe;age;date_incl\nP1;F;50;2016-07-15\nP2;M;61;2016-08-02\n"
    export = write_export(tmp_path, "inclusion.csv", text)
    out = tmp_path / "drafts" / "C60.yaml"
    assert main(["profile", str(export), "--centre", "C60", "--out", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[-5:] == [
        f"Draft mapping written to {out} (2 TODO to decide, 0 TODO-check to confirm). Next:",
        "  1. resolve its TODO comments (then delete them)",
        f"  2. cohortflow check-mapping C60 --mapping {out}",
        f"  3. cohortflow ingest --centre C60 --dry-run --mapping {out}",
        "  4. copy it to the workspace's centres/C60.yaml: it goes live at the next night",
    ]
    assert load_centre_mapping(out).forms["inclusion"].columns["sex"] == "sexe"


def test_profile_refuses_to_write_the_draft_into_a_centres_folder(tmp_path, capsys):
    """It never writes a draft where the next night would read it as live."""
    from cohortflow.cli import main

    export = write_export(tmp_path, "inclusion.csv", "id;sexe;age\nP1;F;50\n")
    for out in (tmp_path / "centres" / "C61.yaml", tmp_path / "ws" / "centres" / "x" / "C61.yaml"):
        assert main(["profile", str(export), "--centre", "C61", "--out", str(out)]) == 1
        error = capsys.readouterr().err
        assert "not in a centres/ folder: a mapping there goes live at the next night" in error
        assert "--out drafts/C61.yaml" in error
        assert not out.exists()

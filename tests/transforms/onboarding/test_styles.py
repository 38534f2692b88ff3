"""Export styles the simulator never writes, drafted by the profiler, loaded and read.

Each export is written by hand below with its truth. A test drafts the centre's mapping,
compares the drafted YAML with what a person would write, loads it as the night does
(``load_centre_mapping``), reads every file with the staging reader and compares the values
with the truth. ``EDITS`` are the lines of the draft a person must change for it to load:
the issue asks for at most 5 per file.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
from pathlib import Path

import polars as pl
import pytest
import yaml

from cohortflow.errors import ConfigError
from schemas.forms import FORMS
from tests.transforms.onboarding.samples import write_export
from transforms.onboarding.draft import draft_mapping_yaml
from transforms.staging.mapping import CentreMapping, load_centre_mapping
from transforms.staging.prepare import birth_dates_read
from transforms.staging.read import stage_file

MAX_EDITS_PER_FILE = 5  # the issue's target


def _load(tmp_path: Path, centre: str, text: str) -> CentreMapping:
    """The draft loaded as the night loads a centre's mapping file."""
    folder = tmp_path / "drafts"
    folder.mkdir(exist_ok=True)
    (folder / f"{centre}.yaml").write_text(text, encoding="utf-8")
    return load_centre_mapping(folder / f"{centre}.yaml")


def _read(mapping: CentreMapping, form: str, path: Path) -> pl.DataFrame:
    """The file read for ``form`` by the staging reader: canonical columns, no failure."""
    form_mapping = mapping.forms[form]
    assert fnmatch.fnmatch(path.name, form_mapping.file_pattern)
    staged = stage_file(
        path.read_bytes(),
        path,
        form_mapping,
        FORMS[form],
        exempt=birth_dates_read(mapping, path.name),
    )
    assert staged.cast_failures.height == 0, staged.cast_failures.to_dicts()
    return staged.frame.select(list(FORMS[form].columns()))


def _rows(frame: pl.DataFrame, columns: list[str]) -> list[tuple]:
    return sorted(frame.select(columns).rows(), key=lambda row: tuple(str(v) for v in row))


def _todo_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if "TODO" in line]


# --- 1. The issue's clinic: TSV with a BOM, English, 15-Jul-2016, three forms in one file ---

PAIN = {  # patient -> NPRS of months 0..12 ('NA': no call)
    "EHR01": ["7", "6", "NA", "5", "5", "NA", "4", "NA", "NA", "NA", "NA", "NA", "3"],
    "EHR02": ["8", "NA", "6", "6", "NA", "NA", "NA", "NA", "NA", "NA", "NA", "NA", "NA"],
    "EHR03": ["6", "5", "5", "4", "4", "3", "3", "3", "2", "2", "2", "2", "2"],
}
HADS_Q = {  # patient -> Q1..Q14 (odd: anxiety items, even: depression items)
    "EHR01": [2, 1, 0, 3, 1, 2, 1, 0, 2, 1, 3, 0, 1, 2],
    "EHR02": [1, 1, 2, 2, 0, 0, 1, 1, 2, 2, 3, 3, 0, 0],
    "EHR03": [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3],
}
PATIENTS = [  # id, sex, age, diagnosis, weight, inclusion date
    ("EHR01", "Male", "54", "Neuropathic", "72.5", "15-Jul-2016"),
    ("EHR02", "Female", "61", "Fibromyalgia", "NA", "03-Aug-2016"),
    ("EHR03", "Female", "47", "CRPS", "65.0", "21-Sep-2016"),
]
KETAMINE_LOG = (  # no administration number; the afternoon dose of 15 Jul logged first
    "PatientID\tDate\tTime\tDose\tUnit\tRoute\n"
    "EHR01\t15-Jul-2016\t14:30\t0.5\tmg/kg\tIV\n"
    "EHR01\t15-Jul-2016\t09:00\t50\tmg\tIV\n"
    "EHR02\t03-Aug-2016\t10:00\t75\tMg\tIV\n"
    "EHR01\t20-Aug-2016\t10:15\t1\tMG/KG\tIV\n"
    "EHR03\t21-Sep-2016\t11:00\t60\tmg\tIM\n"
)


def _issue_exports(folder: Path) -> list[Path]:
    header = ["PatientID", "Sex", "Age", "Diagnosis", "Weight (kg)", "Inclusion date"]
    header += [f"Pain_M{m:02d}" for m in range(13)] + [f"Q{i}" for i in range(1, 15)]
    rows = [[*patient, *PAIN[patient[0]], *map(str, HADS_Q[patient[0]])] for patient in PATIENTS]
    text = "\ufeff" + "\n".join("\t".join(r) for r in [header, *rows]) + "\n"
    return [
        write_export(folder, "patients_20170922.tsv", text),
        write_export(folder, "ketamine_log_20170922.tsv", "\ufeff" + KETAMINE_LOG),
    ]


def test_issue_style_drafts_every_form_of_the_patients_file(tmp_path):
    """It drafts inclusion, wide follow-up and HADS (month 0) from one patients file, and
    the ketamine log with a unit per row and a ranked sequence; nothing to edit to load."""
    patients, log = _issue_exports(tmp_path)
    text = draft_mapping_yaml("C40", [patients, log])
    forms = yaml.safe_load(text)["forms"]
    tsv = {"kind": "csv", "delimiter": "\t", "decimal": ".", "encoding": "utf-8-sig"}
    assert list(forms) == ["inclusion", "follow_up", "ketamine", "hads"]
    assert {forms[f]["file_pattern"] for f in ("inclusion", "follow_up", "hads")} == {
        "patients_*.tsv"
    }
    assert all(form["format"] == tsv for form in forms.values())
    assert forms["inclusion"]["columns"] == {
        "patient_id": "PatientID",
        "sex": "Sex",
        "age": "Age",
        "pain_diagnosis": "Diagnosis",
        "weight_kg": "Weight (kg)",
        "inclusion_date": "Inclusion date",
    }
    assert forms["inclusion"]["date_formats"] == {"inclusion_date": "%d-%b-%Y"}
    assert forms["inclusion"]["codes"]["sex"] == {"Female": "F", "Male": "M"}
    assert forms["follow_up"]["layout"] == "wide"
    assert forms["follow_up"]["id_columns"] == {"patient_id": "PatientID"}
    assert forms["follow_up"]["wide_columns"] == {"nprs": r"Pain_M(\d+)"}
    assert forms["hads"]["columns"] == {"patient_id": "PatientID"} | {
        f"hads_{'a' if n % 2 else 'd'}{(n + 1) // 2}": f"Q{n}" for n in range(1, 15)
    }
    assert forms["hads"]["constants"] == {"month": 0}
    assert forms["ketamine"]["units"] == {"dose_mg": {"column": "Unit"}}
    assert forms["ketamine"]["derived"] == {
        "sequence": {"from": "rank", "date": "administration_date", "time": "Time"}
    }
    assert forms["ketamine"]["export"] == "full"
    assert forms["ketamine"]["date_formats"] == {"administration_date": "%d-%b-%Y"}
    todo = _todo_lines(text)
    assert not [line for line in todo if "Pain_M" in line or "'Q" in line]  # taken by a form
    assert [line for line in todo if "TODO:" in line] == [  # nothing blocks loading
        "description: ''  # TODO: the centre's export tool",
        "pain_diagnosis:  # TODO: no code seen for other: add the centre's",
        "# TODO: not found in the file: call_date",
        "route:  # TODO: no code seen for sc, oral, intranasal: add the centre's",
        "# TODO: not found in the file: setting",
    ]
    assert (
        "month: 0  # TODO-check: no visit or month column: every row is taken as month 0 "
        "(inclusion)" in text
    )
    assert "the unit of each row, from 'Unit' (seen: 'mg' x2, 'MG/KG' x1, 'Mg' x1, 'mg/kg' x1)" in (
        text
    )


def test_issue_style_loads_and_reads_its_truth(tmp_path):
    """Its draft, loaded unedited, reads every value of the truth (doses in their unit)."""
    patients, log = _issue_exports(tmp_path)
    mapping = _load(tmp_path, "C40", draft_mapping_yaml("C40", [patients, log]))
    inclusion = _read(mapping, "inclusion", patients)
    assert _rows(inclusion, ["patient_id", "sex", "age", "weight_kg", "inclusion_date"]) == [
        ("EHR01", "M", 54, 72.5, dt.date(2016, 7, 15)),
        ("EHR02", "F", 61, None, dt.date(2016, 8, 3)),
        ("EHR03", "F", 47, 65.0, dt.date(2016, 9, 21)),
    ]
    pain = _read(mapping, "follow_up", patients)
    assert _rows(pain, ["patient_id", "month", "nprs"]) == sorted(
        ((p, m, int(v)) for p, months in PAIN.items() for m, v in enumerate(months) if v != "NA"),
        key=lambda row: tuple(str(v) for v in row),
    )
    hads = _read(mapping, "hads", patients)
    items = [f"hads_{'a' if n % 2 else 'd'}{(n + 1) // 2}" for n in range(1, 15)]
    assert _rows(hads, ["patient_id", "month", *items]) == [
        (p, 0, *scores) for p, scores in sorted(HADS_Q.items())
    ]
    doses = _read(mapping, "ketamine", log)
    assert _rows(doses, ["patient_id", "sequence", "dose_mg", "dose_mg_per_kg", "route"]) == [
        ("EHR01", 1, 50.0, None, "iv"),  # the morning dose, though logged second
        ("EHR01", 2, None, 0.5, "iv"),
        ("EHR01", 3, None, 1.0, "iv"),
        ("EHR02", 1, 75.0, None, "iv"),
        ("EHR03", 1, 60.0, None, "im"),
    ]


# --- 2. A French clinic: cp1252, ';', '15 juil. 2016', HADS answered in words -------------

FR_INCLUSION = (  # no patient id column: a centre and a number in it; a birth date, no age
    "Centre;N° dans le centre;Sexe;Date de naissance;Poids;Date d'inclusion;Diagnostic\n"
    "01;001;Femme;3 févr. 1962;61,5;15 juil. 2016;Fibromyalgie\n"
    "01;002;Homme;28 août 1950;80;2 août 2016;Douleur neuropathique\n"
    "02;001;Femme;16 sept. 1972;ND;13 sept. 2016;SDRC\n"
)
FR_ITEMS = ["hads_a1", "hads_d1", "hads_a2", "hads_d2", "hads_a3", "hads_d3", "hads_a4"]
FR_ITEMS += ["hads_d4", "hads_a5", "hads_d5", "hads_a6", "hads_d6", "hads_a7", "hads_d7"]
FR_ANSWERS = {  # (centre, number, visit) -> the answers, in questionnaire order, and scores
    ("01", "001", "Inclusion"): [
        ("Souvent", 2),
        ("Pas autant", 1),
        ("Pas du tout", 0),
        ("Plus du tout", 3),
        ("Occasionnellement", 1),
        ("Jamais", 3),
        ("Jamais", 3),
        ("Parfois", 1),
        ("Jamais", 0),
        ("Plus du tout", 3),
        ("Un peu", 2),
        ("Presque jamais", 3),
        ("Jamais", 0),
        ("Souvent", 0),
    ],  # fmt: skip
    ("01", "001", "M3"): [
        ("Jamais", 0),
        ("Oui, tout autant", 0),
        ("Un peu, mais cela ne m'inquiète pas", 1),
        ("Autant que par le passé", 0),
        ("Très occasionnellement", 0),
        ("La plupart du temps", 0),
        ("Oui, en général", 1),
        ("Jamais", 0),
        ("Parfois", 1),
        ("J'y prête autant d'attention que par le passé", 0),
        ("Pas du tout", 0),
        ("Autant qu'avant", 0),
        ("Pas très souvent", 1),
        ("Parfois", 1),
    ],  # fmt: skip
    ("02", "001", "Inclusion"): [
        ("La plupart du temps", 3),
        ("Presque plus", 3),
        ("Oui, très nettement", 3),
        ("Vraiment moins qu'avant", 2),
        ("Très souvent", 3),
        ("Rarement", 2),
        ("Rarement", 2),
        ("Presque toujours", 3),
        ("Très souvent", 3),
        ("Je n'y accorde pas autant d'attention que je devrais", 2),
        ("Oui, c'est tout à fait le cas", 3),
        ("Bien moins qu'avant", 2),
        ("Vraiment très souvent", 3),
        ("Très rarement", 3),
    ],  # fmt: skip
}


def _french_exports(folder: Path) -> list[Path]:
    header = "Centre;N° dans le centre;Visite;" + ";".join(f"HADS{n}" for n in range(1, 15))
    rows = [";".join([*key, *(w for w, _ in answers)]) for key, answers in FR_ANSWERS.items()]
    hads = header + "\n" + "\n".join(rows) + "\n"
    return [
        write_export(folder, "inclusions_C41_2017-09-22.csv", FR_INCLUSION, "cp1252"),
        write_export(folder, "hads_C41_2017-09-22.csv", hads, "cp1252"),
    ]


def test_french_style_drafts_month_names_words_and_derived_columns(tmp_path):
    """It reads '15 juil. 2016', derives the age from the birth date (never shown) and the
    id from centre and number, and scores each HADS item's words by that item's wording."""
    inclusion_file, hads_file = _french_exports(tmp_path)
    text = draft_mapping_yaml("C41", [inclusion_file, hads_file])
    forms = yaml.safe_load(text)["forms"]
    joined = {"from": "join", "columns": ["Centre", "N° dans le centre"], "separator": "-"}
    assert forms["inclusion"]["derived"] == {
        "patient_id": joined,
        "age": {
            "from": "birth_date",
            "column": "Date de naissance",
            "format": "%d %b %Y",
            "at": "inclusion_date",
        },
    }
    assert forms["inclusion"]["date_formats"] == {"inclusion_date": "%d %b %Y"}
    assert forms["hads"]["derived"] == {"patient_id": joined}
    assert forms["hads"]["codes"]["month"] == {"Inclusion": "0", "M3": "3"}
    maps, codes = forms["hads"]["value_maps"], forms["hads"]["codes"]
    assert maps[codes["hads_a1"]] == {
        "Jamais": 0,
        "De temps en temps": 1,
        "Souvent": 2,
        "La plupart du temps": 3,
    }  # 'De temps en temps' not in the file yet: added from the standard wording
    assert maps[codes["hads_d3"]]["Jamais"] == 3  # reverse-worded: never cheerful
    assert maps[codes["hads_a5"]]["Jamais"] == 0
    assert len(set(codes[i] for i in FR_ITEMS)) == 14  # no two items word their answers alike
    assert "Date de naissance" not in " ".join(_todo_lines(text))  # not a DO NOT MAP
    for secret in ("1962", "1950", "1972", "févr.", "août 1950"):
        assert secret not in text
    assert [line for line in _todo_lines(text) if "TODO:" in line] == [  # none blocks loading
        "description: ''  # TODO: the centre's export tool",
        "pain_diagnosis:  # TODO: no code seen for other: add the centre's",
    ]


def test_french_style_loads_and_reads_its_truth(tmp_path):
    """Its draft, loaded unedited, gives the ages, the joined ids and the HADS scores."""
    inclusion_file, hads_file = _french_exports(tmp_path)
    mapping = _load(tmp_path, "C41", draft_mapping_yaml("C41", [inclusion_file, hads_file]))
    inclusion = _read(mapping, "inclusion", inclusion_file)
    assert _rows(inclusion, ["patient_id", "sex", "age", "weight_kg", "inclusion_date"]) == [
        ("01-001", "F", 54, 61.5, dt.date(2016, 7, 15)),
        ("01-002", "M", 65, 80.0, dt.date(2016, 8, 2)),
        ("02-001", "F", 43, None, dt.date(2016, 9, 13)),  # 44 only on 16 September
    ]
    hads = _read(mapping, "hads", hads_file)
    months = {"Inclusion": 0, "M3": 3}
    assert _rows(hads, ["patient_id", "month", *FR_ITEMS]) == sorted(
        (f"{c}-{n}", months[v], *(s for _, s in answers))
        for (c, n, v), answers in FR_ANSWERS.items()
    )


# --- 3. A workbook of two sheets: real dates, Excel day numbers, doses per kg ----------


def _workbook(folder: Path) -> Path:
    import xlsxwriter

    path = folder / "C42_export.xlsx"
    book = xlsxwriter.Workbook(path)
    as_date = book.add_format({"num_format": "dd/mm/yyyy"})
    sheet = book.add_worksheet("Patients")
    sheet.write_row(0, 0, ["Subject ID", "Gender", "Age (years)", "Weight (lb)"])
    sheet.write_row(0, 4, ["Date of inclusion", "Pain type"])
    patients = [
        ("S-01", "F", 52, 143.3, dt.datetime(2016, 7, 15), "Fibromyalgia"),
        ("S-02", "M", 66, None, dt.datetime(2016, 8, 2), "Neuropathic pain"),
    ]
    for row, (sid, sex, age, weight, day, dx) in enumerate(patients, 1):
        sheet.write_row(row, 0, [sid, sex, age])
        if weight is not None:
            sheet.write_number(row, 3, weight)
        sheet.write_datetime(row, 4, day, as_date)
        sheet.write(row, 5, dx)
    sheet = book.add_worksheet("Ketamine")
    sheet.write_row(0, 0, ["Subject ID", "Admin date", "Time", "Dose (mg/kg)", "Route"])
    doses = [  # admin date as Excel day numbers: 42566 = 15 Jul 2016
        ("S-01", 42566, "14:00", 0.25, "IV"),
        ("S-01", 42566, "09:30", 0.5, "IV"),
        ("S-01", 42583, "10:00", 0.5, "IV"),
        ("S-02", 42584, "11:15", 1.0, "SC"),
    ]
    for row, (sid, day, time, dose, route) in enumerate(doses, 1):
        sheet.write_row(row, 0, [sid, day])
        sheet.write_string(row, 2, time)
        sheet.write_row(row, 3, [dose, route])
    book.close()
    return path


def test_workbook_style_drafts_one_form_per_sheet_and_reads_its_truth(tmp_path):
    """It profiles each sheet with the staging reader, reads Excel day numbers as dates,
    and its draft, loaded unedited, reads the truth."""
    workbook = _workbook(tmp_path)
    text = draft_mapping_yaml("C42", [workbook])
    forms = yaml.safe_load(text)["forms"]
    assert forms["inclusion"]["format"] == {"kind": "xlsx", "sheet": "Patients"}
    assert forms["ketamine"]["format"] == {"kind": "xlsx", "sheet": "Ketamine"}
    assert forms["inclusion"]["units"] == {"weight_kg": "lb"}
    assert "date_formats" not in forms["inclusion"]  # real dates: the reader's default
    assert forms["ketamine"]["date_formats"] == {"administration_date": "excel"}
    assert forms["ketamine"]["columns"]["dose_mg_per_kg"] == "Dose (mg/kg)"
    assert "Excel day numbers (2016-07-15 to 2016-08-02)" in text
    mapping = _load(tmp_path, "C42", text)
    inclusion = _read(mapping, "inclusion", workbook)
    assert _rows(inclusion, ["patient_id", "sex", "age", "inclusion_date"]) == [
        ("S-01", "F", 52, dt.date(2016, 7, 15)),
        ("S-02", "M", 66, dt.date(2016, 8, 2)),
    ]
    assert inclusion["weight_kg"].to_list()[0] == pytest.approx(143.3 * 0.45359237)
    doses = _read(mapping, "ketamine", workbook)
    assert _rows(doses, ["patient_id", "sequence", "administration_date", "dose_mg_per_kg"]) == [
        ("S-01", 1, dt.date(2016, 7, 15), 0.5),
        ("S-01", 2, dt.date(2016, 7, 15), 0.25),
        ("S-01", 3, dt.date(2016, 8, 1), 0.5),
        ("S-02", 1, dt.date(2016, 8, 2), 1.0),
    ]


# --- 4. A data team's parquet file: typed columns, names by a word -------------------------


def test_parquet_style_drafts_typed_columns_and_reads_its_truth(tmp_path):
    """It reads a parquet file as the staging reader does (dates as ISO text, booleans as
    true/false) and drafts a mapping that reads the truth unedited."""
    path = tmp_path / "C43_pain_20170922.parquet"
    pl.DataFrame(
        {
            "subj": ["K-1", "K-1", "K-2", "K-2"],
            "visit_month": pl.Series([0, 3, 0, 12], dtype=pl.Int8),
            "call_date": [dt.date(2016, 7, 15), dt.date(2016, 10, 14), dt.date(2016, 8, 2), None],
            "pain_nrs": pl.Series([7, 5, 8, None], dtype=pl.Int16),
        }
    ).write_parquet(path)
    text = draft_mapping_yaml("C43", [path])
    form = yaml.safe_load(text)["forms"]["follow_up"]
    assert form["format"] == {"kind": "parquet"}
    assert form["columns"] == {
        "patient_id": "subj",
        "call_date": "call_date",
        "month": "visit_month",
        "nprs": "pain_nrs",
    }
    assert "nprs: 'pain_nrs'  # TODO-check: by the word 'nrs' of its name" in text
    pain = _read(_load(tmp_path, "C43", text), "follow_up", path)
    assert _rows(pain, ["patient_id", "month", "call_date", "nprs"]) == [
        ("K-1", 0, dt.date(2016, 7, 15), 7),
        ("K-1", 3, dt.date(2016, 10, 14), 5),
        ("K-2", 0, dt.date(2016, 8, 2), 8),
    ]  # K-2's month 12 holds nothing: a visit with nothing recorded, no record
    assert "empty_rows: skip  # TODO-check: 1 of 4 rows hold none of the form's values" in text


# --- 5. Month first, decided by the values; an ambiguous file follows the centre --------


def test_month_first_dates_decided_by_values_and_lent_to_an_ambiguous_file(tmp_path):
    """It reads 07/15/2016 as month first (15 > 12), and a file whose dates all read both
    ways as the centre's other file does, saying so."""
    enrollment = write_export(
        tmp_path,
        "enrollment.csv",
        "Record ID,Sex,Age,Enrollment Date\n101,F,45,07/15/2016\n102,M,58,08/02/2016\n",
    )
    calls = write_export(
        tmp_path,
        "followup.csv",
        "Record ID,Visit,Call Date,NRS\n101,Baseline,07/11/2016,7\n101,Month 3,10/01/2016,5\n"
        "102,Baseline,08/02/2016,6\n",
    )
    text = draft_mapping_yaml("C44", [enrollment, calls])
    forms = yaml.safe_load(text)["forms"]
    assert forms["inclusion"]["date_formats"] == {"inclusion_date": "%m/%d/%Y"}
    assert forms["follow_up"]["date_formats"] == {"call_date": "%m/%d/%Y"}
    assert (
        "call_date: '%m/%d/%Y'  # TODO-check: ambiguous, every value also reads as %d/%m/%Y "
        "(no day > 12); read as 'Enrollment Date' in enrollment.csv, whose values decide"
    ) in text
    assert forms["follow_up"]["codes"]["month"] == {"Baseline": "0", "Month 3": "3"}
    calls_read = _read(_load(tmp_path, "C44", text), "follow_up", calls)
    assert sorted(calls_read["call_date"].to_list()) == [
        dt.date(2016, 7, 11),
        dt.date(2016, 8, 2),
        dt.date(2016, 10, 1),
    ]


def test_ambiguous_dates_without_evidence_keep_the_todo(tmp_path):
    """With no other date column deciding, it keeps today's TODO for a person."""
    export = write_export(
        tmp_path, "followup.csv", "Record ID,Month,Call Date,NRS\n1,0,07/11/2016,7\n"
    )
    text = draft_mapping_yaml("C45", [export])
    assert "call_date: '%d/%m/%Y'  # TODO: ambiguous, every value also reads as %m/%d/%Y" in text


# --- 6. What a person must decide: the draft does not load until it is decided ----------

MESSY_LOG = (
    "Patient;Date;Dose;Unité\n"
    "P1;15/07/2016;50;mg\n"
    "P1;20/08/2016;0,5;mg/kg\n"
    "P2;03/08/2016;40;milligr.\n"
)
MESSY_HADS = "Patient;" + ";".join(f"Q{n}" for n in range(1, 15)) + "\n"
MESSY_HADS += "P1;Un peu;" + ";".join(["0"] * 13) + "\n"
MESSY_HADS += "P2;Beaucoup;" + ";".join(["1"] * 13) + "\n"
# The lines a person changes (draft line -> edited line), per file.
EDITS = {
    "perfusions.csv": [("'milligr.': null", "'milligr.': mg")],
    "hads.csv": [("'Beaucoup': null", "'Beaucoup': 3"), ("'Un peu': null", "'Un peu': 1")],
}


def test_messy_style_fails_to_load_only_where_a_todo_says_to_decide(tmp_path):
    """An unknown unit spelling and unknown answer words are drafted null beside a TODO:
    the mapping does not load until they are decided; 3 edited lines make it load."""
    log = write_export(tmp_path, "perfusions.csv", MESSY_LOG)
    hads = write_export(tmp_path, "hads.csv", MESSY_HADS)
    text = draft_mapping_yaml("C46", [log, hads])
    assert "'milligr.': null  # TODO: which unit is 'milligr.'? one of mg, g, ug, mg/kg" in text
    assert "'Un peu': null  # TODO: its score (0-3)" in text
    with pytest.raises(ConfigError) as refused:
        _load(tmp_path, "C46", text)
    where = set(re.findall(r"(forms\.[^:]+): ", str(refused.value)))
    assert where == {  # exactly the lines whose TODO says to decide (and pydantic's union)
        "forms.ketamine.units.dose_mg.str",
        "forms.ketamine.units.dose_mg.UnitColumn.codes.milligr.",
        "forms.hads.value_maps.hads_beaucoup.Beaucoup",
        "forms.hads.value_maps.hads_beaucoup.Un peu",
    }
    for file_edits in EDITS.values():
        assert len(file_edits) <= MAX_EDITS_PER_FILE
        for old, new in file_edits:
            line = next(line for line in text.splitlines() if old in line)
            text = text.replace(line, line.split(old)[0] + new)
    mapping = _load(tmp_path, "C46", text)
    doses = _read(mapping, "ketamine", log)
    assert _rows(doses, ["patient_id", "sequence", "dose_mg", "dose_mg_per_kg"]) == [
        ("P1", 1, 50.0, None),
        ("P1", 2, None, 0.5),
        ("P2", 1, 40.0, None),
    ]
    assert _read(mapping, "hads", hads)["hads_a1"].to_list() == [1, 3]


# --- 7. Long visits: pain at every visit, HADS at the first only, id in two columns -------


def test_visits_style_reads_two_forms_from_one_long_file(tmp_path):
    """It drafts the pain and the HADS of a visits file, both by its visit column and a
    joined id; the HADS rows of visits without answers are no record."""
    inclusion = write_export(
        tmp_path,
        "KS_INCL_20180702.txt",
        "Site|Subject|Sexe|Âge|Date_inclusion\n01|0003|F|75|2016/10/01\n"
        "01|0004|M|28|2016/05/21\n03|0004|F|51|2016/06/02\n",
        "latin-1",
    )
    items = "|".join(f"HADS{n:02d}" for n in range(1, 15))
    visits_text = f"Site|Subject|Visit|Visit_DateTime|Douleur_EN|{items}\n"
    for site, subject, scores in (("01", "0003", "2"), ("03", "0004", "1")):
        visits_text += f"{site}|{subject}|V0|2016-10-01T09:00:00|7|" + "|".join([scores] * 14)
        visits_text += f"\n{site}|{subject}|V1|2016-11-04T14:45:00|6|" + "|".join(["."] * 14)
        visits_text += f"\n{site}|{subject}|V2|2016-12-05T10:00:00|5|" + "|".join(["."] * 14)
        visits_text += "\n"
    visits = write_export(tmp_path, "KS_VISITES_20180702.txt", visits_text, "latin-1")
    text = draft_mapping_yaml("C47", [inclusion, visits])
    forms = yaml.safe_load(text)["forms"]
    joined = {"from": "join", "columns": ["Site", "Subject"], "separator": "-"}
    assert [forms[f]["derived"]["patient_id"] for f in ("inclusion", "follow_up", "hads")] == [
        joined
    ] * 3
    assert forms["follow_up"]["date_formats"] == {"call_date": "%Y-%m-%dT%H:%M:%S"}
    assert forms["hads"]["empty_rows"] == "skip"
    mapping = _load(tmp_path, "C47", text)
    assert _rows(_read(mapping, "inclusion", inclusion), ["patient_id", "age"]) == [
        ("01-0003", 75),
        ("01-0004", 28),
        ("03-0004", 51),
    ]
    pain = _read(mapping, "follow_up", visits)
    assert _rows(pain, ["patient_id", "month", "nprs"]) == [
        ("01-0003", 0, 7),
        ("01-0003", 1, 6),
        ("01-0003", 2, 5),
        ("03-0004", 0, 7),
        ("03-0004", 1, 6),
        ("03-0004", 2, 5),
    ]
    hads = _read(mapping, "hads", visits)
    assert _rows(hads, ["patient_id", "month", "hads_a1", "hads_d7"]) == [
        ("01-0003", 0, 2, 2),
        ("03-0004", 0, 1, 1),
    ]

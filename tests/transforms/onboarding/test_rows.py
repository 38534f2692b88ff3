"""What a file's rows tell the draft: HADS items numbered by subscale (shown by the file's
own totals) and visit grids whose empty rows are no record. Exports written here."""

from __future__ import annotations

import yaml

from tests.transforms.onboarding.samples import write_export
from transforms.onboarding.draft import draft_mapping_yaml

# patient, then items 1-14 by subscale (1-7 anxiety), then the two totals
HADS_BY_SUBSCALE = [
    ("P1", [3, 2, 1, 0, 1, 2, 3], [0, 0, 1, 1, 2, 2, 3]),
    ("P2", [1, 1, 1, 1, 1, 1, 1], [3, 3, 3, 0, 0, 0, 0]),
    ("P3", [0, 3, 0, 3, 0, 3, 0], [2, 2, 2, 2, 2, 2, 2]),
]


def _hads_file(tmp_path, by_subscale: bool):
    header = ["pid", "visit", *[f"hads{n}" for n in range(1, 15)], "anxiety", "depression"]
    lines = [";".join(header)]
    for pid, anxiety, depression in HADS_BY_SUBSCALE:
        if by_subscale:
            items = anxiety + depression
        else:  # questionnaire order: A1 D1 A2 D2 ...
            items = [v for pair in zip(anxiety, depression, strict=True) for v in pair]
        row = [pid, "baseline", *map(str, items), str(sum(anxiety)), str(sum(depression))]
        lines.append(";".join(row))
    return write_export(tmp_path, "registry_hads.csv", "\n".join(lines) + "\n")


def test_items_numbered_by_subscale_are_read_so_when_the_totals_say_it(tmp_path):
    text = draft_mapping_yaml("R01", [_hads_file(tmp_path, by_subscale=True)])
    columns = yaml.safe_load(text)["forms"]["hads"]["columns"]
    assert [columns[f"hads_a{k}"] for k in range(1, 8)] == [f"hads{n}" for n in range(1, 8)]
    assert [columns[f"hads_d{k}"] for k in range(1, 8)] == [f"hads{n}" for n in range(8, 15)]
    assert "numbered items read by subscale" in text


def test_items_in_questionnaire_order_stay_so(tmp_path):
    text = draft_mapping_yaml("R01", [_hads_file(tmp_path, by_subscale=False)])
    columns = yaml.safe_load(text)["forms"]["hads"]["columns"]
    assert columns["hads_a1"] == "hads1" and columns["hads_d1"] == "hads2"
    assert columns["hads_a2"] == "hads3" and columns["hads_d7"] == "hads14"
    assert "read by subscale" not in text


def test_a_visit_grid_skips_its_rows_with_nothing_recorded(tmp_path):
    """A row per scheduled visit, missed ones with '.' only: no record; a call with a date
    and no score is kept (quarantined later: the score is required)."""
    grid = write_export(
        tmp_path,
        "KETOBS_PAIN_20190311.csv",
        "PATID,VISIT,PAINDT,PAINSCR\n"
        "1001,BASELINE,15JUL2016,7\n"
        "1001,MONTH 1,.,.\n"
        "1001,MONTH 2,14SEP2016,.\n"
        "1001,MONTH 3,15OCT2016,5\n",
    )
    text = draft_mapping_yaml("S01", [grid])
    form = yaml.safe_load(text)["forms"]["follow_up"]
    assert form["empty_rows"] == "skip"
    assert "1 of 4 rows hold none of the form's values" in text


def test_adverse_events_without_severity_are_records(tmp_path):
    """An event's date and type are values: a row without severity is not empty."""
    events = write_export(
        tmp_path,
        "ae_export.csv",
        "PATID,AESTDT,AEDECOD,AESEV\n1001,15JUL2016,NAUSEA,MILD\n1001,16JUL2016,HEADACHE,\n",
    )
    form = yaml.safe_load(draft_mapping_yaml("S01", [events]))["forms"]["adverse_events"]
    assert "empty_rows" not in form


def test_title_rows_above_the_header_are_drafted_as_skip_rows(tmp_path):
    """A report's title above its header, in a CSV and in a workbook sheet."""
    import xlsxwriter

    csv = write_export(
        tmp_path,
        "suivi_douleur.csv",
        "Export KETAPIJN;;\nExtracted 20-05-2019;;\npid;month;nrs;call_date\n"
        "A;0;7;15/07/2016\nA;1;6;16/08/2016\nB;0;5;20/07/2016\n",
    )
    form = yaml.safe_load(draft_mapping_yaml("C1", [csv]))["forms"]["follow_up"]
    assert form["format"]["skip_rows"] == 2
    assert form["columns"]["nprs"] == "nrs"
    path = tmp_path / "registre.xlsx"
    book = xlsxwriter.Workbook(path)
    sheet = book.add_worksheet("Suivi")
    sheet.write_row(0, 0, ["Suivi de la douleur, extraction du 20/05/2019"])
    sheet.write_row(1, 0, ["pid", "month", "nrs", "call_date"])
    for i, row in enumerate([["A", 0, 7, "15/07/2016"], ["A", 1, 6, "16/08/2016"]]):
        sheet.write_row(2 + i, 0, row)
    book.close()
    form = yaml.safe_load(draft_mapping_yaml("C1", [path]))["forms"]["follow_up"]
    assert form["format"] == {"kind": "xlsx", "sheet": "Suivi", "skip_rows": 1}


def test_doses_written_with_their_unit_are_drafted_as_their_own_unit_column(tmp_path):
    """A prescription column '25 mg', '0,5 mg/kg': the draft extracts the number and reads
    the unit from the same cell, and asks for the decimal comma (one edit); it then reads
    mg and mg/kg apart."""
    from schemas.forms import FORMS
    from transforms.staging.mapping import load_centre_mapping
    from transforms.staging.prepare import birth_dates_read
    from transforms.staging.read import stage_file

    log = write_export(
        tmp_path,
        "perfusions_ketamine.csv",
        "IPP;Date perfusion;Posologie;Voie\n"
        "A1;15/07/2016;25 mg;IV\nA1;15/08/2016;0,5 mg/kg;IV\nB2;20/07/2016;30 mg;IV\n"
        "B2;20/09/2016;0,6 mg/kg;IV\nC3;01/08/2016;300 µg/kg;IV\n",
    )
    text = draft_mapping_yaml("C07", [log])
    form = yaml.safe_load(text)["forms"]["ketamine"]
    assert form["units"] == {"dose_mg": {"column": "Posologie"}}
    assert form["extract"] == {"dose_mg": r"^\s*([\d.,]+)"}
    assert form["columns"]["dose_mg"] == "Posologie"
    assert "writes doses with a decimal comma ('0,5 mg/kg'): set the format's decimal" in text
    path = tmp_path / "C07.yaml"
    path.write_text(text.replace("decimal: '.'", "decimal: ','"))  # the one edit
    mapping = load_centre_mapping(path)
    staged = stage_file(
        log.read_bytes(),
        log,
        mapping.forms["ketamine"],
        FORMS["ketamine"],
        exempt=birth_dates_read(mapping, log.name),
    )
    doses = staged.frame.sort("patient_id", "sequence").select("dose_mg", "dose_mg_per_kg")
    assert doses.rows() == [(25.0, None), (None, 0.5), (30.0, None), (None, 0.6), (None, 0.3)]


def test_dutch_and_german_column_names_are_recognised(tmp_path):
    """A Dutch eCRF's inclusion columns and a German ketamine sheet's, by name."""
    dutch = write_export(
        tmp_path,
        "inclusie_export.csv",
        "Participant Id;incl_datum;geslacht;leeftijd;gewicht;diagnose\n"
        "110003;08-03-2016;F;54;71.4;neuropathic\n110004;15-03-2016;M;61;80;other\n",
    )
    columns = yaml.safe_load(draft_mapping_yaml("N01", [dutch]))["forms"]["inclusion"]["columns"]
    assert columns == {
        "patient_id": "Participant Id",
        "inclusion_date": "incl_datum",
        "sex": "geslacht",
        "age": "leeftijd",
        "weight_kg": "gewicht",
        "pain_diagnosis": "diagnose",
    }
    german = write_export(
        tmp_path,
        "ketamin_gaben.csv",
        "Pat.-Nr.;Gabe Nr.;Datum;Dosis;Einheit\n"
        "SA-03;1;16.02.2016;80;mg\nSA-03;2;25.03.2016;1,5;mg/kg KG\n",
    )
    form = yaml.safe_load(draft_mapping_yaml("D01", [german]))["forms"]["ketamine"]
    assert form["columns"]["administration_date"] == "Datum"
    assert form["columns"]["sequence"] == "Gabe Nr."
    assert form["units"] == {"dose_mg": {"column": "Einheit"}}

"""Mapping rules that compute canonical columns: per-row units, constants, ranks, ages,
joined ids, value maps and month names (issue 19). Each export is written here by hand,
with its truth beside it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from pydantic import ValidationError

from cohortflow.errors import FileRejected
from schemas.forms import FORMS
from transforms.staging.mapping import CsvFormat, FormMapping
from transforms.staging.read import stage_file
from transforms.staging.rules import match_key, normalise_unit
from transforms.staging.validate import validate_staged

TSV = CsvFormat(delimiter="\t", encoding="utf-8-sig")
KETAMINE_LOG = (
    "\ufeffPatientID\tDate\tTime\tDose\tUnit\tRoute\n"
    "K01\t15-Jul-2016\t14:00\t1.5\tmg/kg\tIV\n"
    "K01\t15-Jul-2016\t09:30\t100\tmg\tIV\n"  # same day, earlier: sequence 1
    "K01\t02-Aug-2016\t10:00\t0.12\tg\tIV\n"
    "K02\t20-Jul-2016\t\t1500\tmcg/kg\tIM\n"
    "K02\t03-Sep-2016\t\t80\tMG\tIM\n"
    "K03\t21-Jul-2016\t\t90\tml\tIV\n"  # unknown unit
    "K03\t22-Jul-2016\t\t95\t\tIV\n"  # no unit
)
KETAMINE = FormMapping(
    file_pattern="ketamine_log*.tsv",
    format=TSV,
    columns={
        "patient_id": "PatientID",
        "administration_date": "Date",
        "dose_mg": "Dose",
        "route": "Route",
    },
    units={"dose_mg": {"column": "Unit"}},
    derived={"sequence": {"from": "rank", "date": "administration_date", "time": "Time"}},
    codes={"route": {"IV": "iv", "IM": "im"}},
    date_formats={"administration_date": "%d-%b-%Y"},
)
# (patient, sequence) -> (date, dose_mg, dose_mg_per_kg), the truth of KETAMINE_LOG
KETAMINE_TRUTH = {
    ("K01", 1): (dt.date(2016, 7, 15), 100.0, None),
    ("K01", 2): (dt.date(2016, 7, 15), None, 1.5),
    ("K01", 3): (dt.date(2016, 8, 2), 120.0, None),
    ("K02", 1): (dt.date(2016, 7, 20), None, 1.5),
    ("K02", 2): (dt.date(2016, 9, 3), 80.0, None),
}


def _stage(text: str, mapping: FormMapping, form: str, name: str = "export.tsv"):
    return stage_file(text.encode("utf-8"), Path(name), mapping, FORMS[form])


def test_units_per_row_land_in_the_column_their_unit_names():
    """mg/kg rows fill dose_mg_per_kg, g and µg are converted to mg, same-day doses are
    ranked by time; unknown or missing units are quarantined, never loaded as mg."""
    validated = validate_staged(_stage(KETAMINE_LOG, KETAMINE, "ketamine"), FORMS["ketamine"])
    got = {
        (r["patient_id"], r["sequence"]): (
            r["administration_date"],
            r["dose_mg"],
            r["dose_mg_per_kg"],
        )
        for r in validated.valid.iter_rows(named=True)
    }
    assert got.keys() == KETAMINE_TRUTH.keys()
    for key, (day, mg, per_kg) in KETAMINE_TRUTH.items():
        assert got[key][0] == day
        assert got[key][1] == pytest.approx(mg) if mg is not None else got[key][1] is None
        assert got[key][2] == pytest.approx(per_kg) if per_kg else got[key][2] is None
    problems = validated.quarantine.select("_source_row", "rule", "value", "source_column")
    assert problems.sort("_source_row").rows() == [
        (6, "unknown unit", "ml", "Dose"),
        (7, "unit missing", None, "Dose"),
    ]
    assert "not one of mg, g, ug, mg/kg, ug/kg" in validated.quarantine["message"][0]


def test_rank_uses_file_order_for_ties_and_needs_full_exports():
    text = "id\tday\tdose\nA\t2016-07-01\t50\nA\t2016-07-01\t60\nA\t2016-06-01\t40\n"
    mapping = FormMapping(
        file_pattern="*.tsv",
        format=TSV,
        columns={"patient_id": "id", "administration_date": "day", "dose_mg": "dose"},
        derived={"sequence": {"from": "rank", "date": "administration_date"}},
    )
    frame = _stage(text, mapping, "ketamine").frame.sort("sequence")
    assert frame["dose_mg"].to_list() == [40.0, 50.0, 60.0]
    with pytest.raises(ValidationError, match="export: full"):
        FormMapping.model_validate(mapping.model_dump(by_alias=True) | {"export": "incremental"})


def test_rank_of_an_administration_sent_twice_loads_its_dose_once():
    """Two rows identical in every value (time included) share their rank: the copy is an
    exact duplicate, counted, not a second dose; same-day rows that differ by time or dose
    are two administrations, ranked by time then file order."""
    text = (
        "id\tday\ttime\tdose\n"
        "A\t2016-07-01\t09:00\t50\n"
        "A\t2016-07-01\t09:00\t50\n"  # the same row again: an export glitch
        "A\t2016-07-01\t18:00\t50\n"  # same dose, evening: another administration
        "A\t2016-06-01\t\t40\n"
        "A\t2016-06-01\t\t40\n"  # again, no time either
        "B\t2016-07-01\t09:00\t50\n"  # another patient, the same values
    )
    mapping = FormMapping(
        file_pattern="*.tsv",
        format=TSV,
        columns={"patient_id": "id", "administration_date": "day", "dose_mg": "dose"},
        derived={"sequence": {"from": "rank", "date": "administration_date", "time": "time"}},
    )
    staged = _stage(text, mapping, "ketamine")
    ranks = staged.frame.sort("_source_row").select("patient_id", "sequence").rows()
    assert ranks == [("A", 2), ("A", 2), ("A", 3), ("A", 1), ("A", 1), ("B", 1)]
    validated = validate_staged(staged, FORMS["ketamine"])
    assert validated.rows_duplicate == 2 and validated.quarantine.is_empty()
    doses = validated.valid.filter(patient_id="A").sort("sequence")["dose_mg"].to_list()
    assert doses == [40.0, 50.0, 50.0]  # 140 mg, not 230


def test_age_from_a_birth_date_that_is_never_kept():
    """The birth date is read only for the age: whole years at inclusion, the day before a
    birthday one year less; an unreadable one is quarantined without its value."""
    text = (
        "Patient\tSex\tDate of birth\tInclusion\n"
        "E1\tF\t16-Jul-1970\t15-Jul-2016\n"  # the day before the 46th birthday: 45
        "E2\tM\t15-Jul-1960\t15-Jul-2016\n"  # that day: 56
        "E3\tF\t29-févr.-1972\t01-Mar-2016\n"  # French abbreviation: 44
        "E4\tM\t31/12/1955\t02-Aug-2016\n"  # not the declared format
    )
    mapping = FormMapping(
        file_pattern="*.tsv",
        format=TSV,
        columns={"patient_id": "Patient", "sex": "Sex", "inclusion_date": "Inclusion"},
        derived={"age": {"from": "birth_date", "column": "Date of birth", "format": "%d-%b-%Y"}},
        date_formats={"inclusion_date": "%d-%b-%Y"},
    )
    staged = _stage(text, mapping, "inclusion")
    assert dict(zip(staged.frame["patient_id"], staged.frame["age"], strict=True)) == {
        "E1": 45,
        "E2": 56,
        "E3": 44,
        "E4": None,
    }
    assert not [c for c in staged.frame.columns if "birth" in c.lower()]
    failure = staged.cast_failures.row(0, named=True)
    assert (failure["column"], failure["rule"], failure["value"]) == (
        "age",
        "birth date unreadable",
        None,
    )
    assert "1955" not in failure["message"]


def test_a_birth_date_not_declared_for_an_age_still_rejects_the_file():
    text = "Patient\tSex\tDate of birth\tInclusion\nE1\tF\t16-Jul-1970\t15-Jul-2016\n"
    mapping = FormMapping(
        file_pattern="*.tsv",
        format=TSV,
        columns={"patient_id": "Patient", "sex": "Sex", "inclusion_date": "Inclusion"},
        constants={"age": "50"},
        date_formats={"inclusion_date": "%d-%b-%Y"},
    )
    with pytest.raises(FileRejected, match="birth date"):
        _stage(text, mapping, "inclusion")


def test_constants_joined_ids_and_value_maps_for_words():
    """HADS answered in words at month 0 (a constant), the patient id made of two columns."""
    text = (
        "Site;Subject;Q1;Q2\n"
        "12;007;La plupart du temps;Souvent\n"
        "12;008;jamais;PAS DU TOUT\n"
        "12;;Jamais;Jamais\n"  # no subject: no id, quarantined as missing
    )
    mapping = FormMapping(
        file_pattern="*.csv",
        format=CsvFormat(delimiter=";"),
        columns={"hads_a1": "Q1", "hads_d1": "Q2"},
        constants={"month": 0},
        derived={"patient_id": {"from": "join", "columns": ["Site", "Subject"]}},
        value_maps={
            "tension": {
                "La plupart du temps": 3,
                "Souvent": 2,
                "De temps en temps": 1,
                "Jamais": 0,
            },
            "plaisir": {
                "Oui, tout autant": 0,
                "Pas autant": 1,
                "Un peu seulement": 2,
                "Pas du tout": 3,
                "Souvent": 1,
                "Jamais": 3,
            },
        },
        codes={"hads_a1": "tension", "hads_d*": "plaisir"},
    )
    staged = _stage(text, mapping, "hads", "hads.csv")
    rows = staged.frame.select("patient_id", "month", "hads_a1", "hads_d1").rows()
    assert rows == [("12-007", 0, 3, 1), ("12-008", 0, 0, 3), (None, 0, 0, 3)]
    assert staged.cast_failures.height == 0
    validated = validate_staged(staged, FORMS["hads"])
    assert validated.quarantine["rule"].to_list() == ["not_nullable"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"columns": {"patient_id": "id", "administration_date": "d", "dose_mg": "x"}},
            "required column(s) sequence",
        ),
        ({"codes": {"rout": {"IV": "iv"}}}, "did you mean 'route'"),
        ({"codes": {"route": "routes"}}, "no value map named 'routes'"),
        ({"codes": {"hads_*": {"a": "b"}}}, "matches none of the columns"),
        (
            {
                "columns": {"patient_id": "id", "administration_date": "d", "dose_mg": "x"},
                "constants": {"sequence": "x"},
            },
            "constants.sequence: 'x' is not a number",
        ),
        ({"constants": {"dose_mg": "5"}}, "also read from a source column"),
        ({"units": {"dose_mg": {"column": "U", "codes": {"mgr": "ml"}}}}, "not a unit"),
        (
            {
                "units": {"dose_mg": {"column": "U"}},
                "columns": {
                    "patient_id": "id",
                    "sequence": "n",
                    "administration_date": "d",
                    "dose_mg": "x",
                    "dose_mg_per_kg": "y",
                },
            },
            "also mapped",
        ),
        ({"codes": {"route": {"iv": "iv", "IV": "im"}}}, "differ only in case"),
        ({"derived": {"sequence": {"from": "ranking"}}}, "needs 'from: rank"),
    ],
)
def test_a_mapping_that_cannot_produce_its_form_is_refused(changes, message):
    from transforms.staging.mapping import CentreMapping

    base = {
        "file_pattern": "k*.csv",
        "columns": {
            "patient_id": "id",
            "sequence": "n",
            "administration_date": "d",
            "dose_mg": "x",
            "route": "r",
        },
    }
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        CentreMapping.model_validate({"centre_id": "C99", "forms": {"ketamine": base | changes}})


@pytest.mark.parametrize(
    ("text", "unit"),
    [
        ("mg", "mg"),
        (" MG ", "mg"),
        ("mg/kg", "mg/kg"),
        ("mg / kg", "mg/kg"),
        ("mg.kg-1", "mg/kg"),
        ("mcg/kg", "ug/kg"),
        ("µg/kg", "ug/kg"),
        ("µg par kg", "ug/kg"),
        ("milligrammes", "mg"),
        ("lbs", "lb"),
        ("mg/kg KG", "mg/kg"),  # German: per kg of body weight (Körpergewicht)
        ("0,5 mg/kg", "mg/kg"),  # a value written with its unit
    ],
)
def test_unit_spellings(text, unit):
    assert normalise_unit(text) == unit


def test_codes_match_without_case_or_accents():
    assert match_key("  Pas du   Tout ") == match_key("pas du tout") == "pas du tout"
    assert match_key("Très souvent") == "tres souvent"


@pytest.mark.parametrize(
    ("text", "fmt"),
    [
        ("15-Jul-2016", "%d-%b-%Y"),
        ("15 juil. 2016", "%d %b %Y"),
        ("15 juillet 2016", "%d %B %Y"),
        ("15-JUL-16", "%d-%b-%y"),
        ("Jul 15, 2016", "%b %d, %Y"),
        ("July 15, 2016", "%B %d, %Y"),
    ],
)
def test_month_names_in_english_and_french(text, fmt):
    mapping = FormMapping(
        file_pattern="*.tsv",
        format=TSV,
        columns={"patient_id": "id", "month": "m", "nprs": "p", "call_date": "d"},
        date_formats={"call_date": fmt},
    )
    staged = _stage(f"id\tm\tp\td\nA\t1\t5\t{text}\n", mapping, "follow_up")
    assert staged.frame["call_date"].to_list() == [dt.date(2016, 7, 15)]


def test_content_hash_of_a_mapping_without_the_new_keys_is_unchanged():
    """Mappings written before issue 19 keep their hash: their files are not re-staged."""
    plain = FormMapping(file_pattern="a*.csv", columns={"patient_id": "id", "nprs": "p"})
    coded = FormMapping(
        file_pattern="a*.csv",
        columns={"patient_id": "id", "weight_kg": "w", "sex": "s"},
        units={"weight_kg": "lb"},
        codes={"sex": {"1": "F"}},
    )
    # the hashes these mappings had before issue 19 (computed at commit 98c6c7c)
    assert plain.content_hash() == "ab00ee98aeaca050"
    assert coded.content_hash() == "824dc4cbd7cba1ab"


def test_rule_sources_missing_from_the_header_are_named():
    mapping = FormMapping.model_validate(
        KETAMINE.model_dump(by_alias=True) | {"units": {"dose_mg": {"column": "Units"}}}
    )
    with pytest.raises(FileRejected, match="'Units' not in the header"):
        _stage(KETAMINE_LOG, mapping, "ketamine")


def test_wide_layout_with_a_joined_id():
    text = "Site,Subject,Pain_M00,Pain_M01\n3,11,7,NA\n3,12,6,5\n"
    mapping = FormMapping(
        file_pattern="*.csv",
        layout="wide",
        id_columns={},
        wide_columns={"nprs": r"Pain_M(\d+)"},
        derived={"patient_id": {"from": "join", "columns": ["Site", "Subject"]}},
    )
    frame = _stage(text, mapping, "follow_up", "pain.csv").frame
    assert frame.select("patient_id", "month", "nprs").rows() == [
        ("3-11", 0, 7),
        ("3-12", 0, 6),
        ("3-12", 1, 5),
    ]
    assert isinstance(frame, pl.DataFrame)


def test_a_visits_file_gives_hads_records_only_where_it_holds_hads():
    """HADS asked at V0 and V12 only, on a file with a row per visit: with
    ``empty_rows: skip`` the other visits are no HADS records (by default they load empty)."""
    text = "id|visit|pain|A1|D1\nP1|V0|7|2|1\nP1|V1|6|.|.\nP1|V12|4|1|.\n"
    mapping = {
        "file_pattern": "*.txt",
        "format": {"delimiter": "|"},
        "columns": {"patient_id": "id", "month": "visit", "hads_a1": "A1", "hads_d1": "D1"},
        "codes": {"month": {"V0": "0", "V1": "1", "V12": "12"}},
        "missing_values": ["."],
    }
    kept = _stage(text, FormMapping.model_validate(mapping), "hads", "v.txt").frame
    assert kept.height == 3
    skipping = FormMapping.model_validate(mapping | {"empty_rows": "skip"})
    frame = _stage(text, skipping, "hads", "v.txt").frame
    assert frame.select("month", "hads_a1", "hads_d1", "_source_row").rows() == [
        (0, 2, 1, 1),
        (12, 1, None, 3),
    ]
    assert frame["_record"].to_list() == [0, 1]


def test_doses_implausible_for_their_unit_name_the_likely_confusion():
    """0.8 'mg' is a dose per kg written as mg; 15 'mg/kg' a dose in mg written per kg."""
    text = (
        "PatientID\tDate\tTime\tDose\tUnit\tRoute\n"
        "A\t15-Jul-2016\t\t0.8\tmg\tIV\n"
        "A\t16-Jul-2016\t\t15\tmg/kg\tIV\n"
        "A\t17-Jul-2016\t\t80\tmg\tIV\n"
    )
    validated = validate_staged(_stage(text, KETAMINE, "ketamine"), FORMS["ketamine"])
    assert validated.valid["dose_mg"].to_list() == [80.0]
    rules = validated.quarantine.sort("_source_row").select("column", "rule", "message").rows()
    assert [(c, r) for c, r, _ in rules] == [
        ("dose_mg", "dose_mg_not_a_dose_per_kg"),
        ("dose_mg_per_kg", "dose_per_kg_not_a_dose_in_mg"),
    ]
    assert "probably a dose per kg given as mg" in rules[0][2]
    assert "probably a dose in mg given as mg/kg" in rules[1][2]


def test_wide_months_named_by_words_go_through_codes():
    """Pain wide as nrs_baseline, nrs_1m, nrs_3m: the month taken from the column name is
    a value like any other, translated by codes."""
    text = "pid;nrs_baseline;nrs_1m;nrs_3m;nrs_12m\nA;7;6;;4\n"
    mapping = FormMapping(
        file_pattern="*.csv",
        format=CsvFormat(delimiter=";"),
        layout="wide",
        id_columns={"patient_id": "pid"},
        wide_columns={"nprs": r"nrs_(baseline|\d+)m?"},
        codes={"month": {"baseline": "0"}},  # the months written as numbers go through
    )
    staged = _stage(text, mapping, "follow_up", "pain.csv")
    assert staged.frame.select("month", "nprs", "_src_nprs").rows() == [
        (0, 7, "nrs_baseline"),
        (1, 6, "nrs_1m"),
        (12, 4, "nrs_12m"),
    ]


def test_excel_unicode_text_utf16_is_read_and_profiled(tmp_path):
    """Excel's "Unicode text" export: UTF-16 with its byte-order mark, tab-separated."""
    from transforms.onboarding.files import profile_file

    text = "Patient\tMonth\tPain\tCall\nP1\t0\t7\t15/07/2016\nP1\t1\t6\t16/08/2016\n"
    path = tmp_path / "suivi.txt"
    path.write_bytes(text.encode("utf-16"))
    profile = profile_file(path)
    assert profile.skipped is None
    assert (profile.format.encoding, profile.format.delimiter) == ("utf-16", "\t")
    mapping = FormMapping(
        file_pattern="*.txt",
        format=CsvFormat(delimiter="\t", encoding="utf-16"),
        columns={"patient_id": "Patient", "month": "Month", "nprs": "Pain", "call_date": "Call"},
        date_formats={"call_date": "%d/%m/%Y"},
    )
    staged = stage_file(path.read_bytes(), path, mapping, FORMS["follow_up"])
    assert staged.frame.select("month", "nprs", "call_date").rows() == [
        (0, 7, dt.date(2016, 7, 15)),
        (1, 6, dt.date(2016, 8, 16)),
    ]


def test_a_hospital_number_shaped_like_a_phone_is_read_as_the_local_id():
    """IPP 0040187352 is shaped like a French phone number: as the mapped local id it is
    read (and pseudonymised); the same values in another column still reject the file."""
    text = "IPP;Mois;EN\n0040187352;0;7\n0040187353;0;6\n0040187354;0;5\n"
    mapping = FormMapping(
        file_pattern="*.csv",
        format=CsvFormat(delimiter=";"),
        columns={"patient_id": "IPP", "month": "Mois", "nprs": "EN"},
    )
    assert _stage(text, mapping, "follow_up", "s.csv").frame["nprs"].to_list() == [7, 6, 5]
    copied = (
        "IPP;Mois;EN;Contact\n0040187352;0;7;0040187352\n0040187353;0;6;0040187353\n"
        "0040187354;0;5;0040187354\n"
    )
    with pytest.raises(FileRejected, match="phone"):
        _stage(copied, mapping, "follow_up", "s.csv")


def test_missing_codes_and_local_dates_of_offset_timestamps():
    """'9 = Unknown' of a data dictionary is missing in that column only; a timestamp's
    offset is read as written (00:30+02:00 is that day's date, not the day before)."""
    text = "pid,dx,age,sex,incl\nA,9,49,F,2016-07-15T00:30:00+02:00\nB,1,9,M,2016-07-16T09:30:00Z\n"
    mapping = FormMapping(
        file_pattern="*.csv",
        columns={
            "patient_id": "pid",
            "pain_diagnosis": "dx",
            "age": "age",
            "sex": "sex",
            "inclusion_date": "incl",
        },
        codes={"pain_diagnosis": {"1": "neuropathic"}},
        missing_codes={"pain_diagnosis": [9]},
        date_formats={"inclusion_date": "%Y-%m-%dT%H:%M:%S%z"},
    )
    staged = _stage(text, mapping, "inclusion", "d.csv")
    assert staged.frame.select("pain_diagnosis", "age", "inclusion_date").rows() == [
        (None, 49, dt.date(2016, 7, 15)),
        ("neuropathic", 9, dt.date(2016, 7, 16)),  # 9 is missing for dx only
    ]
    assert staged.cast_failures.height == 0


def test_values_extracted_by_a_pattern():
    """Answers written '3 - La plupart du temps': the score is the number before ' - '."""
    text = "IPP;Temps;H1;H2\n040187352;Inclusion;3 - La plupart du temps;0 - Jamais\n"
    text += "040187353;M12;Non renseigné;2 - Rarement\n040187354;M12;Souvent;1 - Parfois\n"
    mapping = FormMapping(
        file_pattern="*.csv",
        format=CsvFormat(delimiter=";"),
        columns={"patient_id": "IPP", "month": "Temps", "hads_a1": "H1", "hads_d1": "H2"},
        codes={"month": {"Inclusion": "0"}},
        extract={"hads_*": r"^(\d) - ", "month": r"^M?(\d+|Inclusion)$"},
        missing_values=["", "Non renseigné"],
    )
    staged = _stage(text, mapping, "hads", "h.csv")
    assert staged.frame.select("month", "hads_a1", "hads_d1").rows() == [
        (0, 3, 0),
        (12, None, 2),
        (12, None, 1),
    ]
    assert staged.cast_failures.select("_record", "column", "value").rows() == [
        (2, "hads_a1", "Souvent")
    ]
    with pytest.raises(ValidationError, match="needs exactly one group"):
        FormMapping.model_validate(
            mapping.model_dump(by_alias=True) | {"extract": {"hads_a1": "x"}}
        )


def test_title_rows_above_the_header_are_skipped(tmp_path):
    """A report's title and extraction date above the header: skip_rows, CSV and XLSX."""
    import xlsxwriter

    text = "Export KETAPIJN;;\nExtracted 20-05-2019;;\npid;month;nrs\nA;0;7\nA;1;6\n"
    mapping = FormMapping(
        file_pattern="*.csv",
        format=CsvFormat(delimiter=";", skip_rows=2),
        columns={"patient_id": "pid", "month": "month", "nprs": "nrs"},
    )
    frame = _stage(text, mapping, "follow_up", "t.csv").frame
    assert frame.select("month", "nprs", "_source_row").rows() == [(0, 7, 1), (1, 6, 2)]
    path = tmp_path / "t.xlsx"
    book = xlsxwriter.Workbook(path)
    sheet = book.add_worksheet("Suivi")
    sheet.write_row(0, 0, ["Suivi de la douleur, extraction du 20/05/2019"])
    sheet.write_row(1, 0, ["pid", "month", "nrs"])
    sheet.write_row(2, 0, ["A", 0, 7])
    book.close()
    xlsx = FormMapping.model_validate(
        mapping.model_dump(by_alias=True)
        | {"format": {"kind": "xlsx", "sheet": "Suivi", "skip_rows": 1}}
    )
    staged = stage_file(path.read_bytes(), path, xlsx, FORMS["follow_up"])
    assert staged.frame.select("patient_id", "month", "nprs").rows() == [("A", 0, 7)]
    assert (
        mapping.content_hash()
        != FormMapping.model_validate(
            mapping.model_dump(by_alias=True) | {"format": {"delimiter": ";"}}
        ).content_hash()
    )


def test_a_mapping_file_edited_is_read_anew(tmp_path):
    """Mappings are validated once per text (a run loads them three times): an edit is
    seen at once, and the same text gives the same (frozen) mapping."""
    from transforms.staging.mapping import load_centre_mapping

    path = tmp_path / "C01.yaml"
    text = "centre_id: C01\nforms:\n  follow_up:\n    file_pattern: 'a*.csv'\n"
    text += "    columns: {patient_id: id, month: m, nprs: p}\n"
    path.write_text(text)
    first = load_centre_mapping(path)
    assert load_centre_mapping(path) is first
    path.write_text(text.replace("nprs: p", "nprs: pain"))
    assert load_centre_mapping(path).forms["follow_up"].columns["nprs"] == "pain"


def test_a_dose_written_with_its_unit_is_its_own_unit_column():
    """Prescriptions written '25 mg', '0,5 mg/kg', '300 µg/kg': the number is extracted,
    the unit read from the same cell."""
    text = (
        "IPP;Date;Posologie\n"
        "A;2016-07-15;25 mg\nA;2016-08-15;0,5 mg/kg\nA;2016-09-15;300 µg/kg\nA;2016-10-15;2 ml\n"
    )
    mapping = FormMapping(
        file_pattern="*.csv",
        format=CsvFormat(delimiter=";", decimal=","),
        columns={"patient_id": "IPP", "administration_date": "Date", "dose_mg": "Posologie"},
        units={"dose_mg": {"column": "Posologie"}},
        extract={"dose_mg": r"^\s*([\d.,]+)"},
        derived={"sequence": {"from": "rank", "date": "administration_date"}},
    )
    staged = _stage(text, mapping, "ketamine", "k.csv")
    assert staged.frame.sort("sequence").select("dose_mg", "dose_mg_per_kg").rows() == [
        (25.0, None),
        (None, 0.5),
        (None, pytest.approx(0.3)),
        (None, None),
    ]
    assert staged.cast_failures.select("column", "rule", "value").rows() == [
        ("dose_mg", "unknown unit", "2 ml")
    ]


def test_ecrf_column_names_with_name_are_not_a_persons_name():
    """Castor's 'Survey Package Name' or 'Repeating Data Name Custom' name a questionnaire
    or a repeated form, not a person; 'Patient Name' still does."""
    from transforms.staging.identifiers import find_identifier_columns

    frame = pl.DataFrame(
        {
            "Survey Package Name": ["Baseline vragenlijsten"],
            "Repeating Data Name Custom": ["Toediening 1"],
            "Patient Name": ["Dupont"],
        }
    )
    assert [c.name for c in find_identifier_columns(frame)] == ["Patient Name"]


def test_a_broken_regex_is_named_not_a_crash():
    """A wide or extract pattern that is no regular expression is a mapping error naming
    the field (it was a bare re.error for wide_columns)."""
    wide = {"file_pattern": "a", "layout": "wide", "id_columns": {"patient_id": "p"}}
    with pytest.raises(ValidationError, match=r"wide_columns.nprs: 'EN_M\(\\d\+' is not a"):
        FormMapping.model_validate(wide | {"wide_columns": {"nprs": r"EN_M(\d+"}})
    long = {"file_pattern": "a", "columns": {"patient_id": "p", "nprs": "n"}}
    with pytest.raises(ValidationError, match="extract.nprs: '\\(x' is not a regular"):
        FormMapping.model_validate(long | {"extract": {"nprs": "(x"}})

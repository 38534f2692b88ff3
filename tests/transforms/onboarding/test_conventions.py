"""Export conventions of the class the held-out styles stand for (issue 19), each on a small
export written here by hand: CDISC/SAS names and formats, registry web exports (number-first
months, ISO 8601 with offsets), classification codes, unit spellings, French EHR items."""

from __future__ import annotations

from tests.transforms.onboarding.samples import text_frame
from transforms.onboarding.columns import profile_table
from transforms.onboarding.matching import suggest_mapping


def _suggest(columns: dict[str, list[str | None]], form: str) -> dict:
    return suggest_mapping(profile_table(text_frame(columns)), form)


def test_cdisc_exposure_names_sas_datetime_and_special_missing():
    """USUBJID, EXSEQ, EXSTDTM in SAS DATETIME, EXDOSE with EXDOSU per row, a volume left
    out of the unit codes, CDISC route terms."""
    s = _suggest(
        {
            "USUBJID": ["K-01", "K-01", "K-02", "K-03"],
            "EXSEQ": ["1", "2", "1", "1"],
            "EXSTDTM": [
                "03MAR2017:09:15:00",
                "10APR2017:10:00:00",
                "05JAN2018:08:00:00",
                "12DEC2017:14:30:00",
            ],
            "EXDOSE": ["0.5", "30", "1", "4"],
            "EXDOSU": ["MG/KG", "MG", "MG/KG", "ML"],
            "EXROUTE": ["INTRAVENOUS", "ORAL", "SUBCUTANEOUS", "INTRAVENOUS"],
        },
        "ketamine",
    )
    m = s["mapping"]
    assert m["columns"] == {
        "patient_id": "USUBJID",
        "sequence": "EXSEQ",
        "administration_date": "EXSTDTM",
        "dose_mg": "EXDOSE",
        "route": "EXROUTE",
    }
    assert m["date_formats"] == {"administration_date": "%d%b%Y:%H:%M:%S"}
    assert m["units"] == {"dose_mg": {"column": "EXDOSU", "codes": {}}}
    assert any("'ML' is not a unit of dose_mg" in t for t in s["todo"])
    assert m["codes"]["route"] == {"INTRAVENOUS": "iv", "ORAL": "oral", "SUBCUTANEOUS": "sc"}


def test_sas_date9_suffix_dates_and_special_missing_letters():
    """PAINDT (a date by its DT suffix) in DATE9, PAINSCR, 'R' among the scores a special
    missing value of this form, with a TODO-check."""
    s = _suggest(
        {
            "PATID": ["10003"] * 6 + ["10004"] * 6,
            "VISIT": ["BASELINE", "MONTH 1"] * 6,
            "PAINDT": ["27FEB2016", "29MAR2016", "27APR2016", "02MAY2016"] * 3,
            "PAINSCR": ["7", "5", "R", "6", "8", "4", "3", "2", "5", "6", "7", "1"],
        },
        "follow_up",
    )
    m = s["mapping"]
    assert m["columns"] == {
        "patient_id": "PATID",
        "month": "VISIT",
        "call_date": "PAINDT",
        "nprs": "PAINSCR",
    }
    assert m["date_formats"] == {"call_date": "%d%b%Y"}
    assert m["codes"]["month"] == {"BASELINE": "0", "MONTH 1": "1"}
    assert m["missing_values"] == ["", "NA", "R"]
    assert any("special missing" in t for t in s["todo"])


def test_cdisc_adverse_events_read_the_coded_term_not_the_verbatim():
    """AEDECOD (MedDRA preferred term) is read, AETERM left out; AESEV as severities."""
    s = _suggest(
        {
            "SUBJID": ["1", "2", "3"],
            "AESTDTC": ["2017-01-02", "2017-02-03", "2017-03-04"],
            "AETERM": ["vomit x3", "tête qui tourne", "TA 170"],
            "AEDECOD": ["VOMITING", "DIZZINESS", "BLOOD PRESSURE INCREASED"],
            "AESEV": ["MILD", "SEVERE", "MODERATE"],
        },
        "adverse_events",
    )
    m = s["mapping"]
    assert m["columns"]["ae_type"] == "AEDECOD"
    assert m["columns"]["onset_date"] == "AESTDTC"
    assert m["codes"]["ae_type"] == {
        "BLOOD PRESSURE INCREASED": "hypertension",
        "DIZZINESS": "dizziness",
        "VOMITING": "nausea",
    }
    assert "AETERM" in s["unmapped"]


def test_registry_wide_months_after_the_number_with_a_baseline_word_and_offsets():
    """vas_baseline, vas_2m, vas_6m and their vas_<t>_at timestamps with offsets."""
    s = _suggest(
        {
            "record": ["R1", "R2"],
            "vas_baseline": ["6", "7"],
            "vas_baseline_at": ["2018-01-03T10:00:00+01:00", "2018-02-01T09:00:00Z"],
            "vas_2m": ["5", ""],
            "vas_2m_at": ["2018-03-05T23:50:00+01:00", ""],
            "vas_6m": ["4", "3"],
            "vas_6m_at": ["2018-07-02T00:10:00+02:00", "2018-08-01T12:00:00+02:00"],
        },
        "follow_up",
    )
    m = s["mapping"]
    assert m["layout"] == "wide"
    assert m["wide_columns"] == {
        "nprs": r"vas_(baseline|\d+)(?:m)?",
        "call_date": r"vas_(baseline|\d+)(?:m)?_at",
    }
    assert m["codes"]["month"] == {"baseline": "0"}
    assert m["date_formats"] == {"call_date": "%Y-%m-%dT%H:%M:%S%z"}


def test_number_first_timepoints_and_atc_substance_codes():
    """Timepoints '3m', '12 months' and ATC substance codes classified by their start."""
    s = _suggest(
        {
            "pid": ["A", "A", "B", "B"],
            "timepoint": ["baseline", "3m", "12 months", "3m"],
            "atc": ["N02AJ13", "N03AX16", "N05BA12", "M01AE01"],
        },
        "treatments",
    )
    codes = s["mapping"]["codes"]
    assert codes["month"] == {"baseline": "0", "3m": "3", "12 months": "12"}
    assert codes["drug_class"] == {
        "M01AE01": "nsaids",
        "N02AJ13": "opioids",
        "N03AX16": "antiepileptics",
        "N05BA12": "benzodiazepines",
    }


def test_icd10_diagnoses_and_enrolment_timestamps():
    """ICD-10 codes (G57.1 neuropathic, M79.7 fibromyalgia, G90.5x CRPS, M54.5 other),
    an enrolment timestamp named '..._at'."""
    s = _suggest(
        {
            "pid": ["1", "2", "3", "4"],
            "icd10": ["G57.1", "M79.7", "G90.51", "M54.5"],
            "enrolled_at": ["2019-01-02T10:00:00+01:00"] * 4,
        },
        "inclusion",
    )
    m = s["mapping"]
    assert m["columns"]["pain_diagnosis"] == "icd10"
    assert m["columns"]["inclusion_date"] == "enrolled_at"
    assert m["codes"]["pain_diagnosis"] == {
        "G57.1": "neuropathic",
        "G90.51": "crps",
        "M54.5": "other",
        "M79.7": "fibromyalgia",
    }


def test_french_ward_words_unit_spelling_and_hads_question_headers():
    """Voie IVSE -> iv, UF words -> settings, 'gamma' -> ug; 'HADS 2 - <question>' items."""
    s = _suggest(
        {
            "NIP": ["A1", "A2", "A3"],
            "Date": ["2017-01-02", "2017-01-03", "2017-01-04"],
            "Dose": ["200", "0.5", "25"],
            "Unité": ["gamma", "mg/kg", "mg"],
            "Voie": ["IVSE", "IVL", "PO"],
            "UF": ["HDJ ANTALGIE", "HC RHUMATO", "CS DOULEUR"],
        },
        "ketamine",
    )
    m = s["mapping"]
    assert m["columns"]["patient_id"] == "NIP"
    assert m["units"]["dose_mg"] == {"column": "Unité", "codes": {"gamma": "ug"}}
    assert m["codes"]["route"] == {"IVL": "iv", "IVSE": "iv", "PO": "oral"}
    assert m["codes"]["setting"] == {
        "CS DOULEUR": "outpatient",
        "HC RHUMATO": "inpatient",
        "HDJ ANTALGIE": "day_hospital",
    }
    hads = _suggest(
        {"IPP": ["1"], "HADS 2 - Je prends plaisir": ["1"], "HADS 3 - J'ai peur": ["2"]},
        "hads",
    )
    assert hads["mapping"]["columns"] == {
        "patient_id": "IPP",
        "hads_d1": "HADS 2 - Je prends plaisir",
        "hads_a2": "HADS 3 - J'ai peur",
    }

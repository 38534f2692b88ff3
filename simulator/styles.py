"""The centre export styles the simulator renders, each declared once.

A style says, per form, which source column carries each canonical column and with which
codes; the renderer and the centre's mapping file are both derived from it, so what the
simulator writes and what the mapping reads cannot drift apart.

* ``redcap``: REDCap-like long CSV per instrument, event names, raw numeric codes, HADS
  items in questionnaire order (q1 anxiety, q2 depression, ...), ISO dates, UTF-8.
* ``fr_wide``: French-locale spreadsheet CSV: ``;``, decimal comma, dd/mm/yyyy, latin-1,
  French headers and codes; the pain follow-up wide (``EN_M0..EN_M12``), ``ND`` for a
  missed call.
* ``xlsx``: one Excel workbook per export, one sheet per form, Excel dates, English
  headers with spaces, ketamine doses in mg/kg.
* ``parquet``: a tidy parquet file per form, typed columns, snake_case English names,
  weight in grams, sex as female/male.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from schemas.forms import AE_TYPES, SF12_RANGES

MONTH_EVENTS = {"baseline_arm_1": "0"} | {f"month_{m}_arm_1": str(m) for m in range(1, 13)}
SF12_ITEMS = list(SF12_RANGES)


@dataclass(frozen=True)
class StyleForm:
    """One form in one style: file (or sheet), columns and codes."""

    file: str  # file name template ({centre}, {stamp}); for xlsx the sheet name
    columns: dict[str, str]  # canonical -> source column
    codes: dict[str, dict[str, str]] = field(default_factory=dict)  # canonical: {src: canon}
    units: dict[str, str] = field(default_factory=dict)
    wide: dict[str, str] = field(default_factory=dict)  # canonical -> source template with {m}


@dataclass(frozen=True)
class Style:
    name: str
    kind: str  # csv | xlsx | parquet
    forms: dict[str, StyleForm]
    date_format: str = "%Y-%m-%d"
    delimiter: str = ","
    decimal: str = "."
    encoding: str = "utf-8"
    missing_values: tuple[str, ...] = ("", "NA")
    workbook: str = ""  # xlsx: the workbook file name template
    description: str = ""


def _redcap() -> Style:
    rc = {"patient_id": "record_id"}
    hads = {f"hads_a{i}": f"hads_q{2 * i - 1}" for i in range(1, 8)}
    hads |= {f"hads_d{i}": f"hads_q{2 * i}" for i in range(1, 8)}
    event = {"month": "redcap_event_name"}
    return Style(
        name="redcap",
        kind="csv",
        description="REDCap-like long CSV exports, one file per instrument, raw codes",
        forms={
            "inclusion": StyleForm(
                "{centre}_inclusion_{stamp}.csv",
                rc
                | {
                    "sex": "sex",
                    "age": "age",
                    "pain_diagnosis": "diag",
                    "weight_kg": "weight",
                    "inclusion_date": "incl_date",
                },
                codes={
                    "sex": {"1": "M", "2": "F"},
                    "pain_diagnosis": {
                        "1": "neuropathic",
                        "2": "fibromyalgia",
                        "3": "crps",
                        "4": "other",
                    },
                },
            ),
            "follow_up": StyleForm(
                "{centre}_followup_{stamp}.csv",
                rc | event | {"call_date": "date_appel", "nprs": "nprs"},
                codes={"month": MONTH_EVENTS},
            ),
            "ketamine": StyleForm(
                "{centre}_ketamine_{stamp}.csv",
                rc
                | {
                    "sequence": "redcap_repeat_instance",
                    "administration_date": "ket_date",
                    "dose_mg": "ket_dose_mg",
                    "route": "ket_route",
                    "setting": "ket_setting",
                },
                codes={
                    "route": {"1": "iv", "2": "im", "3": "sc", "4": "oral", "5": "intranasal"},
                    "setting": {"1": "day_hospital", "2": "inpatient", "3": "outpatient"},
                },
            ),
            "hads": StyleForm(
                "{centre}_hads_{stamp}.csv", rc | event | hads, codes={"month": MONTH_EVENTS}
            ),
            "sf12": StyleForm(
                "{centre}_sf12_{stamp}.csv",
                rc | event | {item: f"sf12_{k + 1}" for k, item in enumerate(SF12_ITEMS)},
                codes={"month": MONTH_EVENTS},
            ),
            "adverse_events": StyleForm(
                "{centre}_ae_{stamp}.csv",
                rc | {"onset_date": "ae_date", "ae_type": "ae_type", "severity": "ae_severity"},
                codes={
                    "ae_type": {
                        "1": "dissociation",
                        "2": "dizziness",
                        "3": "nausea",
                        "4": "hallucination",
                        "5": "hypertension",
                        "6": "headache",
                        "7": "other",
                    },
                    "severity": {"1": "mild", "2": "moderate", "3": "severe"},
                },
            ),
            "treatments": StyleForm(
                "{centre}_conmed_{stamp}.csv",
                rc | event | {"drug_class": "conmed_class"},
                codes={
                    "month": MONTH_EVENTS,
                    "drug_class": {
                        "1": "opioids",
                        "2": "antidepressants",
                        "3": "antiepileptics",
                        "4": "benzodiazepines",
                        "5": "nsaids",
                        "6": "other",
                    },
                },
            ),
        },
    )


def _fr_wide() -> Style:
    pid = {"patient_id": "N° patient"}
    mois = {"month": "Mois"}
    return Style(
        name="fr_wide",
        kind="csv",
        description="French-locale spreadsheet CSV (;, decimal comma, dd/mm/yyyy, latin-1)",
        date_format="%d/%m/%Y",
        delimiter=";",
        decimal=",",
        encoding="latin-1",
        missing_values=("", "ND", "NA"),
        forms={
            "inclusion": StyleForm(
                "inclusion_{centre}_{stamp}.csv",
                pid
                | {
                    "sex": "Sexe",
                    "age": "Âge",
                    "pain_diagnosis": "Diagnostic",
                    "weight_kg": "Poids (kg)",
                    "inclusion_date": "Date d'inclusion",
                },
                codes={
                    "sex": {"H": "M", "F": "F"},
                    "pain_diagnosis": {
                        "neuropathique": "neuropathic",
                        "fibromyalgie": "fibromyalgia",
                        "SDRC": "crps",
                        "autre": "other",
                    },
                },
            ),
            "follow_up": StyleForm(
                "suivi_{centre}_{stamp}.csv",
                pid,
                wide={"nprs": "EN_M{m}", "call_date": "Date_M{m}"},
            ),
            "ketamine": StyleForm(
                "ketamine_{centre}_{stamp}.csv",
                pid
                | {
                    "sequence": "N° administration",
                    "administration_date": "Date",
                    "dose_mg": "Dose (mg)",
                    "route": "Voie",
                    "setting": "Cadre",
                },
                codes={
                    "route": {"IV": "iv", "IM": "im", "SC": "sc", "PO": "oral", "IN": "intranasal"},
                    "setting": {
                        "HDJ": "day_hospital",
                        "Hospitalisation": "inpatient",
                        "Consultation": "outpatient",
                    },
                },
            ),
            "hads": StyleForm(
                "hads_{centre}_{stamp}.csv",
                pid
                | mois
                | {f"hads_{s}{i}": f"HADS_{s.upper()}{i}" for s in "ad" for i in range(1, 8)},
            ),
            "sf12": StyleForm(
                "sf12_{centre}_{stamp}.csv",
                pid | mois | {item: f"SF12_Q{k + 1}" for k, item in enumerate(SF12_ITEMS)},
            ),
            "adverse_events": StyleForm(
                "ei_{centre}_{stamp}.csv",
                pid | {"onset_date": "Date", "ae_type": "Effet indésirable", "severity": "Gravité"},
                codes={
                    "ae_type": {
                        "dissociation": "dissociation",
                        "vertiges": "dizziness",
                        "nausées": "nausea",
                        "hallucinations": "hallucination",
                        "HTA": "hypertension",
                        "céphalées": "headache",
                        "autre": "other",
                    },
                    "severity": {"léger": "mild", "modéré": "moderate", "sévère": "severe"},
                },
            ),
            "treatments": StyleForm(
                "traitements_{centre}_{stamp}.csv",
                pid | mois | {"drug_class": "Classe"},
                codes={
                    "drug_class": {
                        "opioïdes": "opioids",
                        "antidépresseurs": "antidepressants",
                        "antiépileptiques": "antiepileptics",
                        "benzodiazépines": "benzodiazepines",
                        "AINS": "nsaids",
                        "autre": "other",
                    }
                },
            ),
        },
    )


def _xlsx() -> Style:
    pid = {"patient_id": "Patient ID"}
    month = {"month": "Month"}
    return Style(
        name="xlsx",
        kind="xlsx",
        workbook="{centre}_export_{stamp}.xlsx",
        description="Excel workbook, one sheet per form, Excel dates, doses in mg/kg",
        forms={
            "inclusion": StyleForm(
                "Inclusion",
                pid
                | {
                    "sex": "Sex",
                    "age": "Age",
                    "pain_diagnosis": "Diagnosis",
                    "weight_kg": "Weight (kg)",
                    "inclusion_date": "Inclusion date",
                },
                codes={
                    "sex": {"M": "M", "F": "F"},
                    "pain_diagnosis": {
                        "Neuropathic": "neuropathic",
                        "Fibromyalgia": "fibromyalgia",
                        "CRPS": "crps",
                        "Other": "other",
                    },
                },
            ),
            "follow_up": StyleForm(
                "Follow-up", pid | month | {"call_date": "Call date", "nprs": "Pain (NPRS)"}
            ),
            "ketamine": StyleForm(
                "Ketamine",
                pid
                | {
                    "sequence": "Administration",
                    "administration_date": "Date",
                    "dose_mg_per_kg": "Dose (mg/kg)",
                    "route": "Route",
                    "setting": "Setting",
                },
                codes={
                    "route": {
                        "IV": "iv",
                        "IM": "im",
                        "SC": "sc",
                        "Oral": "oral",
                        "Intranasal": "intranasal",
                    },
                    "setting": {
                        "Day hospital": "day_hospital",
                        "Inpatient": "inpatient",
                        "Outpatient": "outpatient",
                    },
                },
            ),
            "hads": StyleForm(
                "HADS",
                pid
                | month
                | {f"hads_{s}{i}": f"{s.upper()}{i}" for s in "ad" for i in range(1, 8)},
            ),
            "sf12": StyleForm("SF-12", pid | month | {item: item.upper() for item in SF12_ITEMS}),
            "adverse_events": StyleForm(
                "Adverse events",
                pid | {"onset_date": "Onset", "ae_type": "Type", "severity": "Severity"},
                codes={
                    "ae_type": {t.capitalize(): t for t in AE_TYPES},
                    "severity": {"Mild": "mild", "Moderate": "moderate", "Severe": "severe"},
                },
            ),
            "treatments": StyleForm(
                "Treatments",
                pid | month | {"drug_class": "Drug class"},
                codes={
                    "drug_class": {
                        c.capitalize(): c
                        for c in (
                            "opioids",
                            "antidepressants",
                            "antiepileptics",
                            "benzodiazepines",
                            "nsaids",
                            "other",
                        )
                    }
                },
            ),
        },
    )


def _parquet() -> Style:
    pid = {"patient_id": "patient"}
    timepoint = {"month": "month"}
    return Style(
        name="parquet",
        kind="parquet",
        description="tidy parquet export, one file per form, weight in grams",
        missing_values=("",),
        forms={
            "inclusion": StyleForm(
                "{centre}_inclusion_{stamp}.parquet",
                pid
                | {
                    "sex": "sex",
                    "age": "age_years",
                    "pain_diagnosis": "diagnosis",
                    "weight_kg": "weight_g",
                    "inclusion_date": "inclusion_date",
                },
                codes={"sex": {"female": "F", "male": "M"}},
                units={"weight_kg": "g"},
            ),
            "follow_up": StyleForm(
                "{centre}_pain_{stamp}.parquet",
                pid | timepoint | {"call_date": "call_date", "nprs": "nprs"},
            ),
            "ketamine": StyleForm(
                "{centre}_ketamine_{stamp}.parquet",
                pid
                | {
                    "sequence": "sequence",
                    "administration_date": "date",
                    "dose_mg": "dose_mg",
                    "route": "route",
                    "setting": "setting",
                },
            ),
            "hads": StyleForm(
                "{centre}_hads_{stamp}.parquet",
                pid
                | timepoint
                | {f"hads_{s}{i}": f"hads_{s}{i}" for s in "ad" for i in range(1, 8)},
            ),
            "sf12": StyleForm(
                "{centre}_sf12_{stamp}.parquet",
                pid | timepoint | {item: item for item in SF12_ITEMS},
            ),
            "adverse_events": StyleForm(
                "{centre}_adverse_events_{stamp}.parquet",
                pid | {"onset_date": "onset_date", "ae_type": "type", "severity": "severity"},
            ),
            "treatments": StyleForm(
                "{centre}_treatments_{stamp}.parquet",
                pid | timepoint | {"drug_class": "drug_class"},
            ),
        },
    )


STYLES: dict[str, Style] = {s.name: s for s in (_redcap(), _fr_wide(), _xlsx(), _parquet())}

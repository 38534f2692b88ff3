"""Analysis views, on tiny hand-made tables with hand-computed answers."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from schemas.forms import FORMS, HADS_ITEMS, SF12_RANGES
from transforms.derived.views import build_views

D0 = dt.date(2016, 7, 1)


def _empty(form: str, **extra) -> pl.DataFrame:
    columns = {"patient_key": pl.String, "centre_id": pl.String}
    columns |= {c: t for c, t in FORMS[form].columns().items() if c != "patient_id"}
    return pl.DataFrame(schema=columns | extra)


def _tables() -> dict[str, pl.DataFrame]:
    """Two patients: pA doses in mg, depressed; pB doses in mg/kg (70 kg), not depressed."""
    patients = pl.DataFrame(
        {
            "patient_key": ["pA", "pB"],
            "centre_id": ["C1", "C1"],
            "sex": ["F", "M"],
            "age": [50, 60],
            "pain_diagnosis": ["crps", "other"],
            "weight_kg": [60.0, 70.0],
            "inclusion_date": [D0, D0],
        }
    )
    follow_ups = pl.DataFrame(
        {
            "patient_key": ["pA", "pA", "pA", "pB", "pB"],
            "centre_id": ["C1"] * 5,
            "month": [0, 1, 12, 0, 2],
            "call_date": [D0, dt.date(2016, 8, 1), dt.date(2017, 7, 1), D0, dt.date(2016, 9, 1)],
            "nprs": [8, 7, 5, 6, 6],
        }
    )
    ketamine = _empty("ketamine").vstack(
        pl.DataFrame(
            {
                "patient_key": ["pA", "pA", "pB", "pB"],
                "centre_id": ["C1"] * 4,
                "sequence": [1, 2, 1, 2],
                "administration_date": [D0, dt.date(2016, 8, 15), D0, dt.date(2017, 8, 1)],
                "dose_mg": [100.0, 50.0, None, None],
                "dose_mg_per_kg": [None, None, 1.5, 2.0],
                "route": ["iv"] * 4,
                "setting": ["inpatient"] * 4,
            },
            schema=_empty("ketamine").schema,
        )
    )
    items_a = dict.fromkeys(HADS_ITEMS[:7], 1) | dict.fromkeys(HADS_ITEMS[7:], 2)  # A 7, D 14
    items_b = dict.fromkeys(HADS_ITEMS, 0)
    hads = pl.DataFrame(
        [
            {"patient_key": "pA", "centre_id": "C1", "month": 0, **items_a},
            {"patient_key": "pB", "centre_id": "C1", "month": 0, **items_b},
            {"patient_key": "pA", "centre_id": "C1", "month": 12, **items_b},
        ]
    )
    # best health on every item: raw 1 where the item is reverse-coded, else the top answer
    reversed_items = ("gh1", "bp2", "mh3", "vt2")
    best = {item: (1 if item in reversed_items else top) for item, top in SF12_RANGES.items()}
    sf12 = pl.DataFrame([{"patient_key": "pA", "centre_id": "C1", "month": 0, **best}])
    events = pl.DataFrame(
        {
            "patient_key": ["pA", "pA"],
            "centre_id": ["C1", "C1"],
            "onset_date": [D0, dt.date(2016, 8, 16)],
            "ae_type": ["nausea", "dizziness"],
            "severity": ["mild", "severe"],
        }
    )
    return {
        "patients": patients,
        "follow_ups": follow_ups,
        "ketamine_administrations": ketamine,
        "hads": hads,
        "sf12": sf12,
        "adverse_events": events,
        "concomitant_treatments": _empty("treatments"),
    }


def test_ketamine_doses_converts_mg_per_kg_with_the_inclusion_weight():
    doses = build_views(_tables())["ketamine_doses"]
    assert doses.select("patient_key", "month", "dose_mg", "dose_source").rows() == [
        ("pA", 0, 100.0, "mg"),
        ("pA", 1, 50.0, "mg"),
        ("pB", 0, 105.0, "mg/kg x weight"),
        ("pB", 13, 140.0, "mg/kg x weight"),
    ]


def test_patient_months_carry_cumulative_dose_and_baseline_depression():
    months = build_views(_tables())["analysis_patient_months"]
    got = months.select(
        "patient_key", "month", "nprs", "cumulative_dose_mg", "hads_d_baseline", "depressed"
    ).rows()
    assert got == [
        ("pA", 0, 8, 100.0, 14.0, True),
        ("pA", 1, 7, 150.0, 14.0, True),
        ("pA", 12, 5, 150.0, 14.0, True),
        ("pB", 0, 6, 105.0, 0.0, False),
        ("pB", 2, 6, 105.0, 0.0, False),
    ]


def test_patient_summary_has_changes_total_dose_and_events():
    patients = build_views(_tables())["analysis_patients"].sort("patient_key")
    a, b = patients.to_dicts()
    assert (a["nprs_baseline"], a["nprs_one_year"], a["nprs_change"]) == (8, 5, -3)
    assert (a["hads_d_baseline"], a["hads_d_one_year"], a["hads_d_change"]) == (14.0, 0.0, -14.0)
    assert a["total_dose_mg"] == 150.0 and a["n_administrations"] == 2
    assert (a["n_adverse_events"], a["n_severe_adverse_events"]) == (2, 1)
    # all best categories weigh 0: the scores are the algorithm's constants
    assert a["pcs12_baseline"] == pytest.approx(56.57706, abs=1e-4)
    assert a["mcs12_baseline"] == pytest.approx(60.75781, abs=1e-4)
    assert a["pcs12_one_year"] is None
    assert b["nprs_one_year"] is None and b["nprs_change"] is None
    assert (b["last_month"], b["nprs_last"]) == (2, 6)
    assert b["total_dose_mg"] == 105.0  # the month-13 administration is after the year
    assert b["n_adverse_events"] == 0

"""A centre whose export style the code has never seen is onboarded with a mapping file only."""

from __future__ import annotations

import datetime as dt

import polars as pl

from tests.conftest import TEST_KEY
from transforms import warehouse
from transforms.ingest import load_prepared
from transforms.staging.mapping import load_all_mappings
from transforms.staging.prepare import prepare_centre
from transforms.staging.pseudonym import patient_key

# Tab-separated, cp1252, German-style dates, Femme/Homme, '-99' and '.' for missing,
# weight in pounds, pain wide with two-digit month suffixes, HADS long with timepoint codes.
INCLUSION = (
    "Identifiant\tGenre\tAnnées\tPoids (lb)\tDébut\tPathologie\n"
    "Z-01\tFemme\t47\t154,3\t08.07.2016\tDouleur neuropathique\n"
    "Z-02\tHomme\t58\t-99\t11.07.2016\tFibromyalgie\n"
)
PAIN = (
    "Identifiant\tdouleur_m00\tdouleur_m01\tdouleur_m02\tappel_m00\tappel_m01\tappel_m02\n"
    "Z-01\t8\t7\t-99\t08.07.2016\t09.08.2016\t.\n"
    "Z-02\t6\t.\t5\t11.07.2016\t.\t12.09.2016\n"
)
HADS = "Identifiant\tTemps\t" + "\t".join(f"A{i}\tD{i}" for i in range(1, 8)) + "\n"
HADS += "Z-01\tJ0\t" + "\t".join("2\t1" for _ in range(7)) + "\n"
HADS += "Z-01\tM12\t" + "\t".join("1\t1" for _ in range(7)) + "\n"

MAPPING = """
centre_id: C77
description: a clinic exporting from its own spreadsheet tool
forms:
  inclusion:
    file_pattern: "patients-*.tsv"
    format: {delimiter: "\\t", decimal: ",", encoding: cp1252}
    columns: {patient_id: Identifiant, sex: Genre, age: Années, weight_kg: "Poids (lb)",
              inclusion_date: Début, pain_diagnosis: Pathologie}
    codes:
      sex: {Femme: F, Homme: M}
      pain_diagnosis: {Douleur neuropathique: neuropathic, Fibromyalgie: fibromyalgia}
    units: {weight_kg: lb}
    date_formats: {inclusion_date: "%d.%m.%Y"}
    missing_values: ["-99", ".", ""]
  follow_up:
    file_pattern: "douleur-*.tsv"
    format: {delimiter: "\\t", encoding: cp1252}
    layout: wide
    id_columns: {patient_id: Identifiant}
    wide_columns: {nprs: 'douleur_m(\\d+)', call_date: 'appel_m(\\d+)'}
    date_formats: {call_date: "%d.%m.%Y"}
    missing_values: ["-99", ".", ""]
  hads:
    file_pattern: "hads-*.tsv"
    format: {delimiter: "\\t", encoding: cp1252}
    columns: {patient_id: Identifiant, month: Temps, hads_a1: A1, hads_a2: A2, hads_a3: A3,
              hads_a4: A4, hads_a5: A5, hads_a6: A6, hads_a7: A7, hads_d1: D1, hads_d2: D2,
              hads_d3: D3, hads_d4: D4, hads_d5: D5, hads_d6: D6, hads_d7: D7}
    codes: {month: {J0: "0", M12: "12"}}
"""


def test_new_centre_loads_from_its_mapping_file_alone(tmp_path):
    """It loads a centre of an unseen export style (tab, cp1252, wide, codes) from its mapping."""
    (tmp_path / "centres").mkdir()
    (tmp_path / "centres" / "C77.yaml").write_text(MAPPING, encoding="utf-8")
    inbox = tmp_path / "inbox" / "C77"
    inbox.mkdir(parents=True)
    (inbox / "patients-2017-09.tsv").write_bytes(INCLUSION.encode("cp1252"))
    (inbox / "douleur-2017-09.tsv").write_bytes(PAIN.encode("cp1252"))
    (inbox / "hads-2017-09.tsv").write_bytes(HADS.encode("cp1252"))

    mapping = load_all_mappings(tmp_path / "centres")["C77"]
    con = warehouse.connect(tmp_path / "warehouse.duckdb")
    warehouse.start_run(con, "r1")
    reports = load_prepared(con, prepare_centre(tmp_path / "inbox", mapping, set()), "r1", TEST_KEY)

    assert [(r.form, r.status, r.rows_loaded, r.rows_quarantined) for r in reports] == [
        ("inclusion", "loaded", 2, 0),
        ("follow_up", "loaded", 4, 0),
        ("hads", "loaded", 2, 0),
    ]
    z1, z2 = patient_key(TEST_KEY, "C77", "Z-01"), patient_key(TEST_KEY, "C77", "Z-02")
    patients = con.sql("SELECT * FROM patients ORDER BY inclusion_date").pl()
    assert patients.select("patient_key", "sex", "age", "pain_diagnosis").rows() == [
        (z1, "F", 47, "neuropathic"),
        (z2, "M", 58, "fibromyalgia"),
    ]
    assert patients["weight_kg"][0] == 154.3 * 0.45359237
    assert patients["weight_kg"][1] is None
    assert patients["inclusion_date"].to_list() == [dt.date(2016, 7, 8), dt.date(2016, 7, 11)]
    pain = con.sql("SELECT patient_key, month, nprs, call_date FROM follow_ups ORDER BY 1, 2").pl()
    expected = pl.DataFrame(
        {
            "patient_key": [z1, z1, z2, z2],
            "month": [0, 1, 0, 2],
            "nprs": [8, 7, 6, 5],
            "call_date": [
                dt.date(2016, 7, 8),
                dt.date(2016, 8, 9),
                dt.date(2016, 7, 11),
                dt.date(2016, 9, 12),
            ],
        }
    ).sort("patient_key", "month")
    assert pain.sort("patient_key", "month").equals(expected)
    hads = con.sql("SELECT month, hads_a1, hads_d7 FROM hads ORDER BY month").fetchall()
    assert hads == [(0, 2, 1), (12, 1, 1)]

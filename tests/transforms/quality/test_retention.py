"""Loss to follow-up, the study's main threat: retention per centre and the month-12
check, on four patients written by hand with their truth."""

from __future__ import annotations

import datetime as dt

import duckdb

from transforms.quality import checks as qc

TODAY = dt.date(2018, 1, 1)
PATIENTS = [  # centre, key, inclusion date, months with a pain score (None: call, no score)
    ("C01", "pA", dt.date(2016, 6, 1), {m: 5 for m in range(13)}),  # kept throughout
    ("C01", "pB", dt.date(2016, 6, 1), {m: 5 for m in range(6)}),  # lost after month 5
    ("C02", "pC", dt.date(2017, 9, 1), {0: 5, 3: 4}),  # 4 months in: due at 3 only
    ("C02", "pD", dt.date(2016, 1, 1), {0: 6, 3: 5, 6: 5, 12: None}),  # called, no score
]


def _warehouse() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE patients (centre_id VARCHAR, patient_key VARCHAR, inclusion_date DATE)"
    )
    con.execute("CREATE TABLE follow_ups (patient_key VARCHAR, month BIGINT, nprs BIGINT)")
    for centre, key, included, scores in PATIENTS:
        con.execute("INSERT INTO patients VALUES (?, ?, ?)", [centre, key, included])
        for month, nprs in scores.items():
            con.execute("INSERT INTO follow_ups VALUES (?, ?, ?)", [key, month, nprs])
    return con


def test_retention_counts_patients_due_and_those_with_a_pain_score():
    """It divides, per centre and for the cohort, the patients with a pain score at
    month 3, 6 and 12 by those due then (a call without a score is not kept)."""
    table = qc.retention(_warehouse(), TODAY)
    rows = {r["centre_id"]: r for r in table.iter_rows(named=True)}
    assert table["centre_id"].to_list() == ["ALL", "C01", "C02"]
    assert (rows["C01"]["due_3"], rows["C01"]["pct_3"]) == (2, 100.0)
    assert (rows["C01"]["due_12"], rows["C01"]["pct_12"]) == (2, 50.0)
    assert (rows["C02"]["due_3"], rows["C02"]["due_6"], rows["C02"]["due_12"]) == (2, 1, 1)
    assert rows["C02"]["pct_12"] == 0.0  # pD was called at 12 but gave no score
    assert (rows["ALL"]["due_12"], rows["ALL"]["pct_12"]) == (3, 33.3)


def test_month12_check_counts_lost_patients_and_queries_them():
    """It counts, among patients due at month 12, those without its pain score, and
    queries each of them at month 12."""
    outcome = qc.retention_month12(_warehouse(), qc.CheckContext(dt.datetime(2018, 1, 1)))
    counts = {
        r["centre_id"]: (r["n_checked"], r["n_violating"])
        for r in outcome.counts.iter_rows(named=True)
    }
    assert counts == {"C01": (2, 1), "C02": (1, 1)}
    assert sorted(outcome.queries["patient_key"]) == ["pB", "pD"]
    assert set(outcome.queries["month"]) == {12}
    assert outcome.queries["problem"].str.contains("month-12 pain score").all()

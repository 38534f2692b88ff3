"""Small centre exports the onboarding tests profile, and helpers to write them."""

from __future__ import annotations

from pathlib import Path

import polars as pl

# A French-locale spreadsheet export: ';', latin-1, decimal comma, dd/mm/yyyy, 'ND'.
FR_FOLLOW_UP = (
    "N° patient;EN_M0;EN_M1;EN_M2;Date_M0;Date_M1;Date_M2;Poids (kg)\n"
    "P-01;7;6;ND;28/07/2016;29/08/2016;;70,5\n"
    "P-02;8;;5;08/09/2016;;06/11/2016;81,0\n"
    "P-03;5;4;3;13/09/2016;14/10/2016;15/11/2016;65,2\n"
)
REDCAP_FOLLOW_UP = (
    "record_id,redcap_event_name,date_appel,nprs\n"
    "C09-0001,baseline_arm_1,2016-09-08,6\n"
    "C09-0001,month_1_arm_1,2016-10-11,3\n"
    "C09-0002,baseline_arm_1,2016-09-18,7\n"
    "C09-0002,month_12_arm_1,2017-09-20,NA\n"
)
REDCAP_INCLUSION = (
    "record_id,sex,age,weight,incl_date\n"
    "C09-0001,1,42,91.2,2016-09-08\n"
    "C09-0002,2,60,94.6,2016-09-18\n"
    "C09-0003,2,54,76.4,2016-07-26\n"
)


def write_export(folder: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    """The export ``text`` written as ``folder/name`` in ``encoding``."""
    path = folder / name
    path.write_bytes(text.encode(encoding))
    return path


def text_frame(columns: dict[str, list[str | None]]) -> pl.DataFrame:
    """An all-text frame, as an export is read for profiling."""
    return pl.DataFrame(columns, schema={c: pl.String for c in columns})

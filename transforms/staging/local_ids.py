"""A centre's own patient ids, read back from its exports when its outbound file is written.

Local ids never leave the inbox except in that centre's own outbound query file (design
invariant 11): the warehouse holds pseudonyms only, so the file that asks a centre to fix
a record must find the centre's id again. It does so here, at generation time, by staging
the centre's exports in the inbox and keying their ids with the night's key. The map lives
in memory only.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from transforms.staging.inbox import discover_centre_files
from transforms.staging.mapping import CentreMapping
from transforms.staging.prepare import StagedExport, stage_export
from transforms.staging.pseudonym import Pseudonymiser

ID_MAP_SCHEMA = pl.Schema({"patient_key": pl.String, "local_id": pl.String})


def local_id_map(inbox: Path, mapping: CentreMapping, secret: str) -> pl.DataFrame:
    """(patient_key, local_id) of every patient the centre's exports in ``inbox`` name."""
    frames = [pl.DataFrame(schema={"patient_id": pl.String})]
    for export in discover_centre_files(inbox, mapping, set()):
        item = stage_export(export, mapping)
        if isinstance(item, StagedExport) and "patient_id" in item.staged.frame.columns:
            frames.append(item.staged.frame.select(pl.col("patient_id").cast(pl.String)))
    ids = pl.concat(frames).drop_nulls().unique()
    keyed = Pseudonymiser(secret)(
        ids.with_columns(centre_id=pl.lit(mapping.centre_id), local_id=pl.col("patient_id"))
    )
    return keyed.select(list(ID_MAP_SCHEMA)).cast(ID_MAP_SCHEMA)

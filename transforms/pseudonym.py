"""Pseudonymised patient keys: a keyed hash (HMAC-SHA256) of centre and local id.

Without the key nobody can recompute a key from a local id; the key itself is held
outside the workspace (environment or a Prefect Secret) and never written anywhere.
"""

from __future__ import annotations

import hashlib
import hmac

import polars as pl

KEY_HEX_CHARS = 20  # 80 bits: no collision in practice even at a million patients


def patient_key(secret: str, centre_id: str, local_id: str) -> str:
    """The pseudonym of one patient: stable for the same key, centre and local id."""
    message = f"{centre_id}\x1f{local_id}".encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return "p" + digest[:KEY_HEX_CHARS]


def pseudonymise(frame: pl.DataFrame, secret: str, centre_id: str) -> pl.DataFrame:
    """Replace ``patient_id`` by ``patient_key`` and add ``centre_id``; the local id is gone."""
    ids = frame["patient_id"].unique().drop_nulls().to_list()
    keys = {i: patient_key(secret, centre_id, i) for i in ids}
    return frame.with_columns(
        patient_key=pl.col("patient_id").replace_strict(keys, default=None, return_dtype=pl.String),
        centre_id=pl.lit(centre_id),
    ).drop("patient_id")

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
    return _keyed_digest(hmac.new(secret.encode(), digestmod=hashlib.sha256), centre_id, local_id)


def _keyed_digest(keyed, centre_id: str, local_id: str) -> str:
    """The key of (centre, local id) from a fresh or copied HMAC state."""
    keyed.update(f"{centre_id}\x1f{local_id}".encode())
    return "p" + keyed.hexdigest()[:KEY_HEX_CHARS]


class Pseudonymiser:
    """Patient keys for (centre, local id) pairs, each keyed hash computed once per night.

    The pairs already seen are kept in a frame, so that pseudonymising a frame is one join
    and a Python call per *new* patient only. It lives in memory, never written.
    """

    _ID = ["centre_id", "patient_id"]

    def __init__(self, secret: str) -> None:
        self._keyed = hmac.new(secret.encode(), digestmod=hashlib.sha256)  # copied per id
        self._keys = pl.DataFrame(schema=dict.fromkeys([*self._ID, "patient_key"], pl.String))

    def __call__(self, frame: pl.DataFrame) -> pl.DataFrame:
        """``frame`` (with ``centre_id``) with ``patient_key`` instead of ``patient_id``."""
        pairs = frame.select(self._ID).unique().drop_nulls()
        new = pairs.join(self._keys, on=self._ID, how="anti")
        if new.height:
            keys = [self._key(centre, local) for centre, local in new.iter_rows()]
            new = new.with_columns(patient_key=pl.Series(keys, dtype=pl.String))
            self._keys = pl.concat([self._keys, new])
        joined = frame.join(self._keys, on=self._ID, how="left", maintain_order="left")
        return joined.drop("patient_id")

    def _key(self, centre_id: str, local_id: str) -> str:
        """``patient_key`` from a copy of the keyed state (a quarter faster than anew)."""
        return _keyed_digest(self._keyed.copy(), centre_id, local_id)

"""The DuckDB warehouse: tables declared from the schemas, one writer, history, snapshots.

The package's modules, each with one reason to change:

* ``ddl``: every table (forms, history, operational, incremental state);
* ``connection``: opening the file (one writer at a time);
* ``load``: validated batches written in one transaction each;
* ``history``: corrections supersede, every version kept, absent rows flagged;
* ``digest`` and ``snapshot``: the snapshot id kept batch by batch, past snapshots rebuilt;
* ``runs``: the runs table (the time axis of history);
* ``tables`` and ``views``: reading the harmonised tables; the analysis views kept up to date;
* ``quarantine``: a run's rejected values for people;
* ``keys``: one key per warehouse (its fingerprint checked), and a deliberate rotation;
* ``published``: the read-only copy analysts read, replaced after each committed night.

Callers use the names below (``from transforms import warehouse``; ``warehouse.connect``).
"""

from transforms.warehouse.connection import connect, first_row
from transforms.warehouse.ddl import LINEAGE_COLUMNS
from transforms.warehouse.keys import (
    Rotation,
    check_key,
    check_reader_key,
    check_workspace_key,
    fingerprint,
    rekey,
    rotate_key,
)
from transforms.warehouse.load import (
    FILE_COLUMNS,
    LoadBatch,
    files_to_restage,
    known_files,
    load_batch,
    record_rejected,
)
from transforms.warehouse.published import (
    ReadSource,
    open_for_reading,
    publish_read_copy,
    published_path,
)
from transforms.warehouse.quarantine import quarantine_reasons, write_run_quarantine
from transforms.warehouse.runs import (
    finish_run,
    last_published_snapshot,
    new_run_id,
    runs_never_published,
    start_run,
    why_failed,
)
from transforms.warehouse.snapshot import (
    content_hash,
    materialise_snapshot,
    snapshot_id,
    snapshot_run_seq,
)
from transforms.warehouse.tables import analysis_views, current_tables, patient_months
from transforms.warehouse.views import refresh_views

__all__ = [
    "FILE_COLUMNS",
    "LINEAGE_COLUMNS",
    "LoadBatch",
    "ReadSource",
    "Rotation",
    "analysis_views",
    "check_key",
    "check_reader_key",
    "check_workspace_key",
    "connect",
    "content_hash",
    "current_tables",
    "fingerprint",
    "files_to_restage",
    "finish_run",
    "first_row",
    "known_files",
    "last_published_snapshot",
    "load_batch",
    "materialise_snapshot",
    "new_run_id",
    "open_for_reading",
    "patient_months",
    "publish_read_copy",
    "published_path",
    "quarantine_reasons",
    "record_rejected",
    "refresh_views",
    "rekey",
    "rotate_key",
    "runs_never_published",
    "snapshot_id",
    "snapshot_run_seq",
    "start_run",
    "why_failed",
    "write_run_quarantine",
]

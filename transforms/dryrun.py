"""A centre's next night rehearsed on a scratch copy of the warehouse: nothing loaded.

``cohortflow ingest --centre C --dry-run``: the files the next night would read for the
centre (new, changed, or loaded under a mapping changed since) are read, mapped,
validated, checked against the warehouse's patients and loaded, by the night's own
functions, into a throw-away copy of the published warehouse. What it would do is
reported (per file: rows read, loaded, quarantined; the rows that waited for a fix and
would now load) and the would-be quarantine is written for people; the real warehouse,
its file records and the inbox are not touched. Usage::

    rehearsal = rehearse_centre(settings, mapping, secret)
    print(rehearsal.lines())
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from cohortflow.errors import FileNotReady
from cohortflow.settings import Settings
from transforms import warehouse
from transforms.ingest import FileReport, load_prepared
from transforms.reevaluate import Reevaluated, reevaluate_waiting
from transforms.staging.mapping import CentreMapping
from transforms.staging.prepare import prepare_centre
from transforms.staging.spreadsheet import write_csv_for_people
from transforms.warehouse.published import published_path

DRY_RUN_ID = "dry-run"
QUARANTINE_COLUMNS = [
    "file_name",
    "form",
    "source_row",
    "source_column",
    "rule",
    "value",
    "message",
]


@dataclass
class Rehearsal:
    """What the next night would do with one centre's files."""

    centre_id: str
    files: list[FileReport] = field(default_factory=list)
    reevaluated: list[Reevaluated] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)  # files still being copied
    quarantine: pl.DataFrame = field(default_factory=pl.DataFrame)
    quarantine_file: Path | None = None

    def lines(self) -> list[str]:
        """The accounting, as the night's summary would give it, in plain lines."""
        out = [f"Dry run for centre {self.centre_id}: nothing was loaded or marked as seen."]
        if self.waiting:
            out.append(f"  still being copied (a night would wait): {', '.join(self.waiting)}")
        if not self.files and not self.reevaluated and not self.waiting:
            out.append("  no new or changed file: the next night has nothing to read for it")
        for f in self.files:
            if f.status == "rejected":
                out.append(f"  {f.file_name}: REJECTED: {f.error}")
                continue
            out.append(
                f"  {f.file_name} ({f.form}): {f.rows_read} rows read, {f.rows_loaded} "
                f"would load, {f.rows_quarantined} quarantined"
                + (f", {f.rows_duplicate} exact duplicates" if f.rows_duplicate else "")
                + (f", {f.rows_changed} corrections" if f.rows_changed else "")
            )
        released = sum(r.rows_loaded for r in self.reevaluated)
        if released:
            out.append(f"  {released} rows waiting for a fix would load now")
        if self.quarantine_file is not None:
            out.append(
                f"  would-be quarantine ({self.quarantine.height} problems): {self.quarantine_file}"
            )
        return out


def rehearse_centre(
    settings: Settings, mapping: CentreMapping, secret: str, *, out_dir: Path | None = None
) -> Rehearsal:
    """Run the centre's part of the next night on a scratch copy; report what it did."""
    rehearsal = Rehearsal(mapping.centre_id)
    with tempfile.TemporaryDirectory(prefix="cohortflow-dry-run-") as scratch:
        scratch_file = _scratch_copy(settings, Path(scratch))
        con = warehouse.connect(scratch_file, memory_limit=settings.duckdb_memory)
        try:
            warehouse.check_key(
                con, secret, inbox=settings.inbox, mappings={mapping.centre_id: mapping}
            )
            warehouse.start_run(con, DRY_RUN_ID, kind="night")
            known = warehouse.known_files(con) - warehouse.files_to_restage(
                con, mapping.content_hashes()
            )
            try:
                prepared = prepare_centre(
                    settings.inbox,
                    mapping,
                    known,
                    settle_seconds=0.0,  # a person waits
                )
            except FileNotReady as exc:
                rehearsal.waiting = list(exc.names)
                return rehearsal
            rehearsal.files = load_prepared(con, prepared, DRY_RUN_ID, secret)
            rehearsal.reevaluated = reevaluate_waiting(
                con, settings.inbox, {mapping.centre_id: mapping}, DRY_RUN_ID, secret
            )
            rehearsal.quarantine = con.sql(
                f"SELECT {', '.join(QUARANTINE_COLUMNS)} FROM quarantine WHERE run_id = ? "
                "ORDER BY file_name, source_row, source_column",
                params=[DRY_RUN_ID],
            ).pl()
        finally:
            con.close()
    if rehearsal.quarantine.height:
        folder = out_dir or settings.workspace / "dry-run" / mapping.centre_id
        folder.mkdir(parents=True, exist_ok=True)
        rehearsal.quarantine_file = folder / "quarantine.csv"
        write_csv_for_people(rehearsal.quarantine, rehearsal.quarantine_file)
    return rehearsal


def _scratch_copy(settings: Settings, scratch: Path) -> Path:
    """The published warehouse copied (what the last night committed); none: an empty one.

    The live file is never opened: a night may be writing it.
    """
    target = scratch / "warehouse.duckdb"
    source = published_path(settings.warehouse)
    if source.exists():
        shutil.copyfile(source, target)
    return target

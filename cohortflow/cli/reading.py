"""The reading commands, ``pull`` and ``status``: they read the published copy of the
warehouse (``transforms/warehouse/published.py``), so they never wait for a night, and
say which state they read."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cohortflow.cli.preconditions import require_warehouse
from cohortflow.errors import CohortflowError
from cohortflow.settings import Settings


def cmd_pull(args: argparse.Namespace) -> int:
    """Reads the published copy (never waits for a night), records in the pull ledger."""
    settings = Settings.from_env(args.workspace)
    require_warehouse(settings)
    from cohortflow.cli.summary import reading_line
    from transforms import warehouse
    from transforms.delivery.ledger import ledger_path, open_ledger
    from transforms.delivery.pull import list_pullable

    con, source = warehouse.open_for_reading(
        settings.warehouse, memory_limit=settings.duckdb_memory
    )
    try:
        if settings.pseudonym_key is not None:  # a key configured must be the warehouse's
            warehouse.check_reader_key(con, settings.require_key())
        if args.list:
            print(reading_line(settings, source))
            print(list_pullable(con, snapshot=args.snapshot, as_of=args.as_of))
            return 0
        if not args.table or not args.out:
            raise CohortflowError("pull needs a TABLE and --out PATH (--list shows the tables)")
        with open_ledger(ledger_path(settings.warehouse)) as ledger:
            result = _pull(con, ledger, args, settings)
    finally:
        con.close()
    for warning in result.warnings:
        print(f"cohortflow: warning: {warning}", file=sys.stderr)
    print(reading_line(settings, source))  # which state was pulled (stderr: errors only)
    print(result.summary())
    return 0


def _kept_folders(settings: Settings) -> list[Path]:
    """The workspace's own folders: a pull never writes into them (the inbox above all)."""
    return [
        settings.inbox,
        settings.centres_config,
        settings.reports,
        settings.artifacts,
        settings.prefect_home,
        settings.outbox,
        settings.workspace / "published",
        settings.workspace / "archive",
    ]


def _pull(con, ledger, args: argparse.Namespace, settings: Settings):
    """``pull`` with the command's options, recorded in ``ledger``."""
    from transforms.delivery.pull import pull

    return pull(
        con,
        args.table,
        args.out,
        fmt=args.format,
        columns=args.columns,
        centres=args.centres,
        months=args.months,
        snapshot=args.snapshot,
        as_of=args.as_of,
        lineage=args.lineage,
        csv_dialect=args.csv_dialect,
        force=args.force,
        protected=_kept_folders(settings),
        ledger=ledger,
    )


def cmd_status(args: argparse.Namespace) -> int:
    settings = Settings.from_env(args.workspace)
    require_warehouse(settings)
    from cohortflow.cli.summary import status_summary

    print(status_summary(settings))
    return 0

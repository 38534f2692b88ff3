"""The command line's grammar: every subcommand with its help, a description and examples.

``commands`` maps each subcommand (``args.command``) to its function. A mistyped command
or choice is answered with the closest valid one ("did you mean ...?").
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import NoReturn

from cohortflow.errors import did_you_mean

KEY_NOTE = (
    "The pseudonymisation key comes from COHORTFLOW_PSEUDONYM_KEY (or a Prefect Secret "
    "block named cohortflow-pseudonym-key): a long random secret kept outside the "
    "workspace, the same every night; it is never written anywhere."
)
WORKSPACE_NOTE = (
    "Every command takes --workspace DIR (default: $COHORTFLOW_HOME, else ./cohortflow-data)."
)


class Parser(argparse.ArgumentParser):
    """argparse, with the closest valid choice named when a choice is mistyped."""

    def error(self, message: str) -> NoReturn:
        found = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if found:
            choices = re.findall(r"'([^']*)'", found.group(2))
            message += did_you_mean(found.group(1), choices)
        super().error(message)


class _Formatter(argparse.HelpFormatter):
    """Descriptions wrapped to the terminal; the examples block kept as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith("examples:"):
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def _sub(sub, name: str, help_text: str, description: str, examples: str, **kwargs):
    """A subcommand with its one-line help, a description and an examples block."""
    return sub.add_parser(
        name,
        help=help_text,
        description=description,
        epilog=f"examples:\n{examples}\n\n{WORKSPACE_NOTE}",
        formatter_class=_Formatter,
        **kwargs,
    )


def build() -> argparse.ArgumentParser:
    parser = Parser(
        prog="cohortflow",
        description="Nightly ETL for a multicentre clinical cohort.",
        epilog="Run `cohortflow COMMAND --help` for a command's options and examples.",
    )
    sub = parser.add_subparsers(required=True, metavar="COMMAND", dest="command")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--workspace", help="workspace folder (default: $COHORTFLOW_HOME, else ./cohortflow-data)"
    )
    _simulation_commands(sub, common)
    _night_commands(sub, common)
    _reading_commands(sub, common)
    return parser


def _simulation_commands(sub, common) -> None:
    demo = _sub(
        sub,
        "demo",
        "simulate a cohort and run the night on it",
        "Simulate a cohort's centre exports into a fresh workspace, run the nightly "
        "pipeline on them (a fixed public key: simulated data only) and print what it did.",
        "  cohortflow demo\n  cohortflow demo --patients 2000 --centres 10 --workspace /tmp/demo",
        parents=[common],
    )
    _simulation_options(demo)
    simulate = _sub(
        sub,
        "simulate",
        "write simulated centre exports into the inbox",
        "Write a simulated cohort into a workspace: each centre's exports in inbox/, its "
        "mapping file in centres/, and the simulator's truth in simulation/.",
        "  cohortflow simulate --patients 5000 --centres 20\n"
        "  cohortflow simulate --styles redcap,fr_wide --fault-rate 0.05",
        parents=[common],
    )
    _simulation_options(simulate)


def _night_commands(sub, common) -> None:
    run = _sub(
        sub,
        "run",
        "the nightly pipeline on the inbox",
        "Ingest the inbox's new or changed exports, rebuild the analysis views, check data "
        "quality, refit the models the refit policy says are due, and publish the copy "
        "readers open. Nothing is started when nothing changed since the last night. " + KEY_NOTE,
        "  COHORTFLOW_PSEUDONYM_KEY=... cohortflow run\n  cohortflow run --workspace /data/cohort",
        parents=[common],
    )
    run.set_defaults(fit_models=True)
    ingest = _sub(
        sub,
        "ingest",
        "ingest the inbox, fit nothing",
        "The night without the models: ingest, views, data quality, the copy for "
        "readers. " + KEY_NOTE,
        "  COHORTFLOW_PSEUDONYM_KEY=... cohortflow ingest\n"
        "  COHORTFLOW_PSEUDONYM_KEY=... cohortflow ingest --centre C31 --dry-run",
        parents=[common],
    )
    ingest.set_defaults(fit_models=False)
    ingest.add_argument(
        "--dry-run",
        action="store_true",
        help="with --centre: rehearse the centre's next night on a scratch copy of the "
        "warehouse (read, map, validate, check against its patients) and write the "
        "would-be quarantine to dry-run/<centre>/; nothing is loaded or marked as seen",
    )
    ingest.add_argument("--centre", help="the centre to rehearse (with --dry-run)")
    ingest.add_argument(
        "--mapping", type=Path, help="rehearse with this mapping file (a draft not yet in centres/)"
    )
    _sub(
        sub,
        "quality",
        "run the data-quality checks and write their report",
        "Run the data-quality checks on the warehouse as it stands (centres whose data "
        "changed since the last run; the others' results carried over) and write "
        "reports/<run>/quality.html and the query files per centre.",
        "  cohortflow quality\n  cohortflow quality --full",
        parents=[common],
    ).add_argument("--full", action="store_true", help="check every centre, changed or not")
    fit = _sub(
        sub,
        "fit",
        "refit and publish the models now",
        "Refit the models on the current snapshot as the refit policy says (the primary "
        "model and descriptive tables on every change; the slower secondary models "
        "weekly or when the cohort grew; see models/policy.py) and publish them with "
        "their manifest. Answers at once when nothing is due.",
        "  cohortflow fit\n  cohortflow fit --force",
        parents=[common],
    )
    fit.add_argument(
        "--force", action="store_true", help="refit every model, even if already published"
    )
    _sub(
        sub,
        "serve",
        "run the schedules (nightly ingestion, weekly refit) in this process",
        "Serve cohortflow's deployments with their schedules from this process "
        "(no work pool needed); without PREFECT_API_URL it starts and owns a local Prefect "
        "server (its scheduler creates the runs). One per workspace. Stops with Ctrl-C or "
        "SIGTERM. Nightly time: COHORTFLOW_NIGHTLY_CRON (default '0 2 * * *'), in "
        "COHORTFLOW_TIMEZONE (default Europe/Paris). " + KEY_NOTE,
        "  COHORTFLOW_HOME=/data/cohort COHORTFLOW_PSEUDONYM_KEY=... cohortflow serve",
        parents=[common],
    )
    _sub(
        sub,
        "rekey",
        "rotate the pseudonymisation key: every patient re-keyed in one transaction",
        "Move every pseudonym from the current key (COHORTFLOW_PSEUDONYM_KEY) to a new one "
        "(COHORTFLOW_NEW_PSEUDONYM_KEY: from the environment, never an argument, which "
        "would show in ps), in one transaction, history kept. Local ids are never stored: "
        "they are read again from the exports in the inbox, so every export loaded so far "
        "must still be there.",
        "  COHORTFLOW_PSEUDONYM_KEY=old COHORTFLOW_NEW_PSEUDONYM_KEY=new cohortflow rekey",
        parents=[common],
    )


def _reading_commands(sub, common) -> None:
    _sub(
        sub,
        "status",
        "the last night at a glance, then each centre",
        "What the last night did (state, files, rows loaded and quarantined, data-quality "
        "breaches new and persisting, models refitted or carried over), the last runs by "
        "kind, and per centre its files, rows and data-quality pass rate. Reads the "
        "published copy: never waits for a night.",
        "  cohortflow status\n  cohortflow status --workspace /data/cohort",
        parents=[common],
    )
    _pull_command(sub, common)
    profile = _sub(
        sub,
        "profile",
        "profile a new centre's export files and draft its mapping file",
        "Print a profile of each file (format, columns, types, codes, missing markers, "
        "direct identifiers) and, with --centre, a draft mapping YAML whose TODO comments "
        "say what a person must decide.",
        "  cohortflow profile inbox/C31/*\n"
        "  cohortflow profile inbox/C31/* --centre C31 --out drafts/C31.yaml",
    )
    profile.add_argument("files", nargs="+", type=Path, metavar="FILE")
    check = _sub(
        sub,
        "check-mapping",
        "check a centre's mapping file against its files in the inbox",
        "Load the centre's mapping (every required column mapped, constant or derived; "
        "codes for columns that exist) and hold it against the centre's files in "
        "inbox/<centre>/: every file pattern matches a file, every source column it names "
        "is in the header, every wide pattern matches a column. One line per problem, with "
        "the closest name when one looks mistyped. Exit status 1 when there is a problem.",
        "  cohortflow check-mapping C31\n  cohortflow check-mapping C31 --mapping drafts/C31.yaml",
        parents=[common],
    )
    check.add_argument("centre", metavar="CENTRE")
    check.add_argument(
        "--mapping", type=Path, help="the mapping file to check (default: centres/CENTRE.yaml)"
    )
    profile.add_argument("--centre", help="centre id: also draft its mapping file")
    profile.add_argument(
        "--out", type=Path, help="write the draft there (default: print it); never overwrites"
    )


def _pull_command(sub, common) -> None:
    pull = _sub(
        sub,
        "pull",
        "write a harmonised table or analysis view as parquet, CSV, Stata, SPSS or SAS "
        "transport, with a data card",
        "Pull one table or view of the warehouse, as it stands or at a past snapshot, into "
        "a file with a data card beside it (PATH.card.json); every pull is recorded in "
        "pulls.duckdb.",
        "  cohortflow pull --list\n"
        "  cohortflow pull analysis_patient_months --out months.parquet\n"
        "  cohortflow pull analysis_patients --out p.csv --csv-dialect fr --centres C01,C02\n"
        "  cohortflow pull analysis_patients --out patients.dta --force",
        parents=[common],
    )
    pull.add_argument("table", nargs="?", help="table or view to pull (see --list)")
    pull.add_argument("--out", type=Path, help="output file; the data card is written beside it")
    pull.add_argument(
        "--force", action="store_true", help="replace --out (and its data card) if they exist"
    )
    pull.add_argument(
        "--format",
        choices=["parquet", "csv", "dta", "sav", "xpt"],
        help="file format: parquet, csv, dta (Stata), sav (SPSS), xpt (SAS transport); "
        "default: from --out's extension (another extension is an error)",
    )
    pull.add_argument("--columns", type=comma_list, help="columns to keep, comma-separated")
    pull.add_argument("--centres", type=comma_list, help="keep these centres only (C01,C02)")
    pull.add_argument(
        "--months", type=int_list, help="keep these months only (tables with a month column)"
    )
    when = pull.add_mutually_exclusive_group()
    when.add_argument("--snapshot", help="the exact past state with this snapshot id")
    when.add_argument(
        "--as-of",
        help="the state after the last completed run started by this time (ISO; "
        "UTC unless an offset is given; a bare date means the end of that day)",
    )
    pull.add_argument(
        "--lineage", action="store_true", help="keep the lineage columns (_file_hash, ...)"
    )
    pull.add_argument(
        "--csv-dialect",
        choices=["default", "fr"],
        default="default",
        help="fr: ';' separator and decimal comma, for French-locale spreadsheets",
    )
    pull.add_argument(
        "--list", action="store_true", help="show the snapshots, and the tables and views"
    )


def _simulation_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--patients", type=int, default=329, help="number of patients (329)")
    parser.add_argument("--centres", type=int, default=30, help="number of centres (30)")
    parser.add_argument("--seed", type=int, default=20230516, help="random seed")
    parser.add_argument(
        "--fault-rate",
        type=float,
        default=0.02,
        help="share of export rows damaged on purpose, to exercise quarantine (0.02)",
    )
    parser.add_argument(
        "--styles",
        type=comma_list,
        default=None,
        help="export styles, given to centres in turn (default: redcap,fr_wide,xlsx,parquet)",
    )


def comma_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def int_list(text: str) -> list[int]:
    try:
        return [int(part) for part in comma_list(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: months are integers, e.g. 0,6,12") from None

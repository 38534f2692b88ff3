"""The ``cohortflow`` command line: one program, a subcommand per user task.

Prefect and the heavy libraries are imported inside the commands, after the workspace's
Prefect settings are in the environment, so ``cohortflow --help`` is instant.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cohortflow.cli.preconditions import report_broken_mappings, require_warehouse, writer_lock
from cohortflow.cli.reading import cmd_pull, cmd_status
from cohortflow.errors import CohortflowError, StorageError, full_disk, storage_error
from cohortflow.settings import DEMO_PSEUDONYM_KEY, Settings, configure_prefect

DEMO_MARKER = ".cohortflow-demo"


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except CohortflowError as exc:
        print(f"cohortflow: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # a full disk, in any library's words: one line, the path named
        problem = _storage_problem(exc, args)
        if problem is None:
            raise
        print(f"cohortflow: {problem}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("cohortflow: interrupted", file=sys.stderr)
        return 130


def _storage_problem(exc: Exception, args: argparse.Namespace) -> StorageError | None:
    """The full disk or unwritable path behind ``exc`` (however wrapped), or the workspace
    when its file system is full and the error lost the cause on the way."""
    try:
        workspace: Path | None = Settings.from_env(getattr(args, "workspace", None)).workspace
    except CohortflowError:
        workspace = None
    if workspace is None:
        return storage_error(exc)
    return storage_error(exc, workspace) or full_disk(workspace)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cohortflow", description="Nightly ETL for a multicentre clinical cohort."
    )
    sub = parser.add_subparsers(required=True, metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--workspace", help="workspace folder (default: $COHORTFLOW_HOME, else ./cohortflow-data)"
    )

    demo = sub.add_parser(
        "demo", parents=[common], help="simulate a cohort and run the night on it"
    )
    _simulation_options(demo)
    demo.set_defaults(handler=cmd_demo)

    simulate = sub.add_parser(
        "simulate", parents=[common], help="write simulated centre exports into the inbox"
    )
    _simulation_options(simulate)
    simulate.set_defaults(handler=cmd_simulate)

    run = sub.add_parser("run", parents=[common], help="the nightly pipeline on the inbox")
    run.set_defaults(handler=cmd_run, fit_models=True)
    ingest = sub.add_parser("ingest", parents=[common], help="ingest the inbox, fit nothing")
    ingest.set_defaults(handler=cmd_run, fit_models=False)

    status = sub.add_parser("status", parents=[common], help="last runs and per-centre files")
    status.set_defaults(handler=cmd_status)

    quality = sub.add_parser(
        "quality", parents=[common], help="run the data-quality checks and write their report"
    )
    quality.set_defaults(handler=cmd_quality)

    fit = sub.add_parser("fit", parents=[common], help="refit and publish the models now")
    fit.add_argument(
        "--force", action="store_true", help="refit even if this snapshot is already published"
    )
    fit.set_defaults(handler=cmd_fit)

    serve = sub.add_parser(
        "serve",
        parents=[common],
        help="run the schedules (nightly ingestion, weekly refit) in this process",
        description="Serve cohortflow's deployments with their schedules from this process "
        "(no work pool needed); without PREFECT_API_URL it starts and owns a local Prefect "
        "server (its scheduler creates the runs). One per workspace. Stops with Ctrl-C or "
        "SIGTERM. Nightly time: COHORTFLOW_NIGHTLY_CRON "
        "(default '0 2 * * *'), in COHORTFLOW_TIMEZONE (default Europe/Paris).",
    )
    serve.set_defaults(handler=cmd_serve)

    rekey = sub.add_parser(
        "rekey",
        parents=[common],
        help="rotate the pseudonymisation key: every patient re-keyed in one transaction",
        description="Move every pseudonym from the current key (COHORTFLOW_PSEUDONYM_KEY) to "
        "a new one (COHORTFLOW_NEW_PSEUDONYM_KEY: from the environment, never an argument, "
        "which would show in ps), in one transaction, history kept. Local ids are never "
        "stored: they are read again from the exports in the inbox, so every export loaded "
        "so far must still be there.",
    )
    rekey.set_defaults(handler=cmd_rekey)

    pull = sub.add_parser(
        "pull",
        parents=[common],
        help="write a harmonised table or analysis view as parquet, CSV, Stata, SPSS or SAS "
        "transport, with a data card",
        description="Pull one table or view of the warehouse, as it stands or at a past "
        "snapshot, into a file with a data card beside it (PATH.card.json); every pull is "
        "recorded in the warehouse's pulls table.",
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
    pull.add_argument("--columns", type=_comma_list, help="columns to keep, comma-separated")
    pull.add_argument("--centres", type=_comma_list, help="keep these centres only (C01,C02)")
    pull.add_argument(
        "--months", type=_int_list, help="keep these months only (tables with a month column)"
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
    pull.set_defaults(handler=cmd_pull)

    profile = sub.add_parser(
        "profile",
        help="profile a new centre's export files and draft its mapping file",
        description="Print a profile of each file (format, columns, types, codes, missing "
        "markers, direct identifiers) and, with --centre, a draft mapping YAML whose "
        "TODO comments say what a person must decide.",
    )
    profile.add_argument("files", nargs="+", type=Path, metavar="FILE")
    profile.add_argument("--centre", help="centre id: also draft its mapping file")
    profile.add_argument(
        "--out", type=Path, help="write the draft there (default: print it); never overwrites"
    )
    profile.set_defaults(handler=cmd_profile)
    return parser


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
        type=_comma_list,
        default=None,
        help="export styles, given to centres in turn (default: redcap,fr_wide,xlsx,parquet)",
    )


def cmd_simulate(args: argparse.Namespace) -> int:
    settings = Settings.from_env(args.workspace)
    summary = _simulate(settings, args)
    print(summary)
    return 0


def _simulate(settings: Settings, args: argparse.Namespace) -> str:
    from simulator.write import simulate_into_workspace

    cohort, faults = simulate_into_workspace(
        settings.workspace,
        n_patients=args.patients,
        n_centres=args.centres,
        seed=args.seed,
        fault_rate=args.fault_rate,
        **({"styles": args.styles} if args.styles else {}),
    )
    return (
        f"Simulated {cohort.patients.height} patients in {cohort.centres.height} centres "
        f"(seed {args.seed}): exports in {settings.inbox}, mappings in {settings.centres_config}, "
        f"{faults.height} injected faults and the true parameters in {settings.simulation}"
    )


def cmd_demo(args: argparse.Namespace) -> int:
    # Simulated data only: a fixed, public key keeps the demo's pseudonyms reproducible;
    # no settle time, the simulator has just written the files.
    settings = dataclasses.replace(
        Settings.from_env(args.workspace).with_key(DEMO_PSEUDONYM_KEY), settle_seconds=0.0
    )
    _fresh_demo_workspace(settings.workspace)
    print("cohortflow demo: a simulated cohort, the nightly pipeline, and what it produced.\n")
    print(_simulate(settings, args), "\n", sep="")
    from cohortflow.cli.summary import night_summary

    with _prefect(settings, quiet=True):
        from flows.nightly import nightly

        result = _night_result(nightly(settings=settings, return_state=True))
    print(night_summary(result, truth_path=settings.simulation / "truth.json"))
    from simulator.calibration import calibration_lines  # the demo's table (statsmodels)

    print("\n".join(calibration_lines(settings.workspace, result.manifest)))
    return _exit_status(result)


@contextmanager
def _prefect(settings: Settings, *, quiet: bool = False) -> Iterator[None]:
    """Prefect pointed at the workspace and a local server this process owns (stopped on
    exit, and by the kernel if this process is killed; flows/server.py), or at
    ``PREFECT_API_URL``. Before any import of Prefect."""
    configure_prefect(settings, quiet=quiet)
    from flows.server import prefect_api

    with prefect_api(settings, scheduler=False):
        yield


def _night_result(state):
    """The flow's result (also of a failed night), or its error re-raised (one line)."""
    from flows.nightly import NightFailed

    result = state.result(raise_on_failure=False)
    if isinstance(result, NightFailed):
        return result.night
    if isinstance(result, BaseException):
        raise result
    return result


def _exit_status(result) -> int:
    """0 for a night that loaded what it could (warnings included), 1 if part of it failed."""
    return 1 if result.failed_centres or result.quality_error else 0


def _fresh_demo_workspace(root: Path) -> None:
    """The demo starts clean, but never wipes a folder it did not create."""
    if root.exists() and any(root.iterdir()):
        if not (root / DEMO_MARKER).exists():
            raise CohortflowError(
                f"{root} exists and is not a demo workspace; choose another with --workspace"
            )
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / DEMO_MARKER).write_text("created by `cohortflow demo`; safe to delete\n")


def cmd_run(args: argparse.Namespace) -> int:
    settings = Settings.from_env(args.workspace)
    if not settings.centres_config.is_dir():
        raise CohortflowError(
            f"{settings.centres_config} does not exist: add one mapping file per centre "
            "(or run `cohortflow simulate` to create a simulated workspace)"
        )
    # every pre-condition before Prefect starts (its start prints tracebacks of its own)
    with writer_lock(settings, "run" if args.fit_models else "ingest"):
        _check_warehouse_free(settings)
        report_broken_mappings(settings)  # named now; only all of them broken stops the night
        with _prefect(settings):
            from flows.secrets import resolve_pseudonym_key

            secret = resolve_pseudonym_key(settings)  # a missing key, before the flow too
            _check_key(settings, secret)  # another key than the warehouse's: before the flow
            from flows.nightly import nightly

            state = nightly(settings=settings, fit_models=args.fit_models, return_state=True)
    from cohortflow.cli.summary import night_summary

    result = _night_result(state)
    print(night_summary(result))
    return _exit_status(result)


def cmd_quality(args: argparse.Namespace) -> int:
    settings = Settings.from_env(args.workspace)
    require_warehouse(settings)
    with writer_lock(settings, "quality"):  # it writes its results: before Prefect starts
        _check_warehouse_free(settings)
        with _prefect(settings):
            from flows.quality import quality

            state = quality(settings=settings, return_state=True)
    from cohortflow.cli.summary import quality_lines

    print("\n".join(quality_lines(_night_result(state))))
    return 0


def cmd_fit(args: argparse.Namespace) -> int:
    settings = Settings.from_env(args.workspace)
    require_warehouse(settings)
    with writer_lock(settings, "fit"):  # fit during ingest: one line, before Prefect starts
        _check_warehouse_free(settings)
        _check_key(settings)
        with _prefect(settings):
            from flows.fit import fit

            result = fit(settings=settings, force=args.force)
    from cohortflow.cli.summary import fit_summary

    print(fit_summary(result))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """The schedules, served from this process; see flows/server.py for the server it owns."""
    settings = Settings.from_env(args.workspace)
    if not settings.centres_config.is_dir():
        raise CohortflowError(f"{settings.centres_config} does not exist: nothing to serve")
    configure_prefect(settings)
    from flows.server import prefect_api, serve_deployments, serve_lock, stop_on_sigterm

    with serve_lock(settings), stop_on_sigterm():  # the lock first: a twin names its PID
        if settings.pseudonym_key is not None:  # fail now, not at 02:00 (nor after a server)
            _check_key(settings, settings.require_key())
        with prefect_api(settings) as api:
            print(f"cohortflow: serving the schedules against {api}", file=sys.stderr)
            from flows.secrets import resolve_pseudonym_key  # may read a Secret block there

            _check_key(settings, resolve_pseudonym_key(settings))
            serve_deployments(settings)
    print("cohortflow: serve stopped", file=sys.stderr)
    return 0


def cmd_rekey(args: argparse.Namespace) -> int:
    settings = Settings.from_env(args.workspace)
    require_warehouse(settings)
    new_secret = settings.require_new_key()
    with writer_lock(settings, "rekey"), _prefect(settings):  # the key may be a Secret block
        from flows.secrets import resolve_pseudonym_key
        from transforms import warehouse

        rotation = warehouse.rotate_key(settings, resolve_pseudonym_key(settings), new_secret)
    print(rotation.summary())
    return 0


def _check_key(settings: Settings, secret: str | None = None) -> None:
    """The key against the warehouse's fingerprint before Prefect starts, read-only (a
    refusal writes nothing and is one line). ``secret``: a command that writes pseudonyms;
    None: one that needs no key, checked only if a key is configured all the same."""
    from transforms import warehouse

    if secret is not None:
        warehouse.check_workspace_key(settings, secret)
    elif settings.pseudonym_key is not None:
        warehouse.check_workspace_key(settings, settings.require_key(), writer=False)


def _comma_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _int_list(text: str) -> list[int]:
    try:
        return [int(part) for part in _comma_list(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: months are integers, e.g. 0,6,12") from None


def _check_warehouse_free(settings: Settings) -> None:
    """Another night holding the warehouse: say so now, in one line, before Prefect starts."""
    from transforms import warehouse

    if settings.warehouse.exists():
        warehouse.connect(
            settings.warehouse, read_only=True, memory_limit=settings.duckdb_memory
        ).close()


def cmd_profile(args: argparse.Namespace) -> int:
    from transforms.onboarding import draft_mapping_yaml, profile_report

    missing = [str(p) for p in args.files if not p.is_file()]
    if missing:
        raise CohortflowError(f"not a file: {', '.join(missing)}")
    print(profile_report(args.files))
    if args.centre is None:
        if args.out:
            raise CohortflowError("--out needs --centre (the draft is a centre's mapping file)")
        return 0
    draft = draft_mapping_yaml(args.centre, args.files)
    if args.out is None:
        print(draft)
        return 0
    if args.out.exists():
        raise CohortflowError(f"{args.out} exists: the draft never overwrites a mapping file")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(draft, encoding="utf-8")
    print(
        f"Draft mapping written to {args.out}: review its TODO comments, then move it to "
        "the workspace's centres/ folder."
    )
    return 0

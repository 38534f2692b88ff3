"""The ``cohortflow`` command line: one program, a subcommand per user task.

Prefect and the heavy libraries are imported inside the commands, after the workspace's
Prefect settings are in the environment, so ``cohortflow --help`` is instant.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

from cohortflow import progress
from cohortflow.cli import parser, shortcuts
from cohortflow.cli.onboarding import cmd_check_mapping, cmd_dry_run
from cohortflow.cli.preconditions import (
    report_broken_mappings,
    require_warehouse,
    require_workspace,
    writer_lock,
)
from cohortflow.cli.reading import cmd_pull, cmd_status
from cohortflow.errors import CohortflowError, StorageError, full_disk, storage_error
from cohortflow.locks import open_duckdb
from cohortflow.settings import DEMO_PSEUDONYM_KEY, Settings, configure_prefect

DEMO_MARKER = ".cohortflow-demo"


LONG_COMMANDS = ("demo", "simulate", "run", "ingest", "quality", "fit", "rekey")


def main(argv: list[str] | None = None) -> int:
    """The program (``argv`` None: the command line, as the ``cohortflow`` script and
    ``python -m cohortflow.cli`` call it) or one command for the tests (``argv`` given).

    As the program, a long command ends the process itself once it is done (``_exit_now``).
    """
    args = parser.build().parse_args(argv)
    status = _dispatch(args)
    if argv is None and args.command in LONG_COMMANDS:
        _exit_now(status)
    return status


def _exit_now(status: int) -> None:
    """End the process without the interpreter's teardown: freeing the modules and data
    of a night (Prefect, GX, statsmodels, polars) took 1.5-4 s after everything was
    written (bench/night.py). Every file is closed and the Prefect server stopped by then;
    the exit handlers run and the streams are flushed first, as a normal exit does."""
    import atexit
    import logging

    atexit._run_exitfuncs()  # what a normal exit runs (Prefect, matplotlib, tempfile)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def _dispatch(args: argparse.Namespace) -> int:
    args.handler = HANDLERS[args.command]
    try:
        if args.command not in LONG_COMMANDS:
            return args.handler(args)
        with progress.showing(progress.display_for(sys.stderr)):  # bars, or timed lines
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

    with _prefect(settings, quiet=True, meanwhile=shortcuts.importing(*shortcuts.NIGHT_IMPORTS)):
        from flows.nightly import nightly

        result = _night_result(nightly(settings=settings, return_state=True))
    print(night_summary(result, truth_path=settings.simulation / "truth.json"))
    from simulator.calibration import calibration_lines  # the demo's table (statsmodels)

    print("\n".join(calibration_lines(settings.workspace, result.manifest)))
    return _exit_status(result)


@contextmanager
def _prefect(
    settings: Settings, *, quiet: bool = False, meanwhile: Callable[[], object] = lambda: None
) -> Iterator[None]:
    """Prefect pointed at the workspace and a local server this process owns (stopped on
    exit, and by the kernel if this process is killed; flows/server.py), or at
    ``PREFECT_API_URL``. Before any import of Prefect. ``meanwhile``: the command's
    imports, done while the server starts."""
    configure_prefect(settings, quiet=quiet)
    from flows.server import prefect_api, without_heartbeats

    with prefect_api(settings, scheduler=False, meanwhile=meanwhile), without_heartbeats():
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
    if getattr(args, "dry_run", False):
        return cmd_dry_run(args)
    if getattr(args, "centre", None) or getattr(args, "mapping", None):
        raise CohortflowError(
            "--centre and --mapping go with --dry-run: a night reads every centre"
        )
    settings = Settings.from_env(args.workspace)
    require_workspace(settings)
    if not settings.centres_config.is_dir():
        raise CohortflowError(
            f"{settings.centres_config} does not exist: add one mapping file per centre "
            "(or run `cohortflow simulate` to create a simulated workspace)"
        )
    with writer_lock(settings, "run" if args.fit_models else "ingest"):
        nothing = shortcuts.nothing_to_run(settings, fit_models=args.fit_models)
        if nothing:
            report_broken_mappings(settings)  # only all of them broken is an error
            print(nothing)
            return 0
        _check_warehouse_free(settings)
        imports = shortcuts.importing(*shortcuts.NIGHT_IMPORTS)

        def before_the_night() -> None:
            """While the server starts: the mapping files' check (it needs the forms'
            schemas: pandera's import, 0.5 s), then the night's imports. A night whose every
            mapping is broken stops there, in one line, and the server with it."""
            report_broken_mappings(settings)  # named now; only all of them broken stops it
            imports()

        with _prefect(settings, meanwhile=before_the_night):
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
        with _prefect(settings, meanwhile=shortcuts.importing(*shortcuts.QUALITY_IMPORTS)):
            from flows.quality import quality

            state = quality(settings=settings, full=args.full, return_state=True)
    from cohortflow.cli.summary import quality_lines

    print("\n".join(quality_lines(_night_result(state))))
    return 0


def cmd_fit(args: argparse.Namespace) -> int:
    settings = Settings.from_env(args.workspace)
    require_warehouse(settings)
    with writer_lock(settings, "fit"):  # fit during ingest: one line, before Prefect starts
        nothing = None if args.force else shortcuts.nothing_to_refit(settings)
        if nothing:
            print(nothing)
            return 0
        _check_warehouse_free(settings)
        _check_key(settings)
        with _prefect(settings, meanwhile=shortcuts.importing(*shortcuts.FIT_IMPORTS)):
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
    from flows import server

    with server.serve_lock(settings), server.stop_on_sigterm():  # a twin names its PID
        if settings.pseudonym_key is not None:  # fail now, not at 02:00 (nor after a server)
            _check_key(settings, settings.require_key())
        with server.prefect_api(settings) as api:
            print(f"cohortflow: serving the schedules against {api}", file=sys.stderr)
            from flows.secrets import resolve_pseudonym_key  # may read a Secret block there

            _check_key(settings, resolve_pseudonym_key(settings))
            with server.advertise(settings, api) if api else nullcontext():  # run reuses it
                server.serve_deployments(settings)
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


def _check_warehouse_free(settings: Settings) -> None:
    """Another process holding the warehouse: say so now, in one line, before Prefect
    starts (DuckDB alone: the warehouse package imports pandera, 0.5 s)."""
    if settings.warehouse.exists():
        open_duckdb(settings.warehouse, read_only=True).close()


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
    if args.out is not None and "centres" in args.out.resolve().parent.parts:
        raise CohortflowError(
            f"{args.out}: not in a centres/ folder: a mapping there goes live at the next "
            f"night; write the draft elsewhere (e.g. --out drafts/{args.centre}.yaml), check "
            "it, then copy it there"
        )
    draft = draft_mapping_yaml(args.centre, args.files)
    if args.out is None:
        print(draft)
        return 0
    if args.out.exists():
        raise CohortflowError(f"{args.out} exists: the draft never overwrites a mapping file")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(draft, encoding="utf-8")
    decide = sum("# TODO:" in line for line in draft.splitlines())
    check = sum("# TODO-check:" in line for line in draft.splitlines())
    centre, out = args.centre, args.out
    print(
        f"Draft mapping written to {out} ({decide} TODO to decide, {check} TODO-check to "
        f"confirm). Next:\n"
        f"  1. resolve its TODO comments (then delete them)\n"
        f"  2. cohortflow check-mapping {centre} --mapping {out}\n"
        f"  3. cohortflow ingest --centre {centre} --dry-run --mapping {out}\n"
        f"  4. copy it to the workspace's centres/{centre}.yaml: it goes live at the next night"
    )
    return 0


HANDLERS = {
    "demo": cmd_demo,
    "simulate": cmd_simulate,
    "run": cmd_run,
    "ingest": cmd_run,
    "status": cmd_status,
    "quality": cmd_quality,
    "fit": cmd_fit,
    "serve": cmd_serve,
    "rekey": cmd_rekey,
    "pull": cmd_pull,
    "profile": cmd_profile,
    "check-mapping": cmd_check_mapping,
}

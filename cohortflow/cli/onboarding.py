"""Onboarding a centre from the command line: check its mapping, rehearse its next night.

``cohortflow check-mapping C [--mapping FILE]`` and ``cohortflow ingest --centre C
--dry-run [--mapping FILE]``: a draft is checked and rehearsed where it is (outside
centres/, where it would go live at the next night) before it is copied there.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cohortflow.errors import CohortflowError, ConfigError, did_you_mean
from cohortflow.settings import Settings


def _mapping_path(settings: Settings, centre: str, given: Path | None) -> Path:
    path = given or settings.centres_config / f"{centre}.yaml"
    if not path.is_file():
        known = [p.stem for p in settings.centres_config.glob("*.yaml")]
        raise CohortflowError(
            f"no mapping file {path}"
            + did_you_mean(centre, known)
            + ("" if given else "; a draft elsewhere is checked with --mapping FILE")
        )
    return path


def cmd_check_mapping(args: argparse.Namespace) -> int:
    from transforms.staging.mapping import load_centre_mapping
    from transforms.staging.mapping_check import check_against_files

    settings = Settings.from_env(args.workspace)
    path = _mapping_path(settings, args.centre, args.mapping)
    try:  # (a draft may be called otherwise than C31.yaml)
        mapping = load_centre_mapping(path, args.centre)
    except ConfigError as exc:
        problems = exc.problems
        print(f"{path}: {len(problems)} problem(s); the mapping does not load:")
        print("\n".join(f"  {p}" for p in problems))
        return 1
    problems = check_against_files(mapping, settings.inbox)
    if problems:
        print(
            f"{path}: {len(problems)} problem(s) with the files in {settings.inbox / args.centre}:"
        )
        print("\n".join(f"  {p}" for p in problems))
        return 1
    forms = ", ".join(mapping.forms)
    print(
        f"{path}: loads, and fits the files in {settings.inbox / args.centre} ({forms}). "
        f"Next: cohortflow ingest --centre {args.centre} --dry-run"
        + (f" --mapping {path}" if args.mapping else "")
    )
    return 0


def cmd_dry_run(args: argparse.Namespace) -> int:
    from flows.secrets import resolve_pseudonym_key
    from transforms.dryrun import rehearse_centre
    from transforms.staging.mapping import load_centre_mapping

    if not args.centre:
        raise CohortflowError("--dry-run rehearses one centre: give it with --centre C")
    settings = Settings.from_env(args.workspace)
    path = _mapping_path(settings, args.centre, args.mapping)
    mapping = load_centre_mapping(path, args.centre)
    secret = resolve_pseudonym_key(settings)
    rehearsal = rehearse_centre(settings, mapping, secret)
    print("\n".join(rehearsal.lines()))
    rejected = any(f.status == "rejected" for f in rehearsal.files)
    return 1 if rejected or rehearsal.waiting or rehearsal.quarantine.height else 0

"""When each model is refitted: the declared policy, in one place.

A night whose data changed always refits the primary model (the study's main result)
and the descriptive tables: seconds, even at a million patients. The slower secondary
models (interaction, centre, trajectories, mediation: minutes together at registry
scale) are refitted when the data changed since their last fit **and** one of:

* the cohort is small (at most ``SMALL_COHORT`` patients: every fit takes seconds);
* their last fit is ``REFIT_AFTER_DAYS`` days old or more (weekly);
* the cohort's size moved by more than ``COHORT_CHANGE`` since their last fit;
* the fit is forced (``cohortflow fit --force``, the weekly-refit deployment).

Otherwise their last results are carried over into the new publication, unchanged, and
the manifest says for every model the snapshot, run and time its results are as of
(``specification.as_of``) and states this policy (``specification.refit_policy``).
Pure Python: the command line reads it before anything heavy is imported.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

SMALL_COHORT = 20_000  # patients: below this, every model refits on every changed night
REFIT_AFTER_DAYS = 7.0
COHORT_CHANGE = 0.05  # share of patients added or removed since a model's last fit
EVERY_CHANGED_NIGHT = ("primary", "descriptives")
DEFERRABLE = ("interaction", "centre", "trajectory", "mediation")


def describe() -> dict:
    """The policy as the manifest records it."""
    return {
        "every_changed_night": list(EVERY_CHANGED_NIGHT),
        "deferrable": list(DEFERRABLE),
        "deferrable_refit_when": (
            f"data changed and (cohort <= {SMALL_COHORT} patients, or last fit >= "
            f"{REFIT_AFTER_DAYS:g} days old, or cohort size changed by > "
            f"{COHORT_CHANGE:.0%}, or forced)"
        ),
    }


@dataclass(frozen=True)
class AsOf:
    """What a model's published results were fitted on."""

    snapshot_id: str
    run_id: str
    fitted_at: str  # ISO time, UTC
    patients: int | None  # None: not recorded (results published before this policy)
    tables: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        return {
            "snapshot_id": self.snapshot_id,
            "run_id": self.run_id,
            "fitted_at": self.fitted_at,
            "patients": self.patients,
            "tables": list(self.tables),
        }


@dataclass
class Plan:
    """Which analyses to fit now and which to carry over, each with its reason."""

    refit: list[str] = field(default_factory=list)
    carried: dict[str, AsOf] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)


def plan(
    names: tuple[str, ...],
    previous: Mapping[str, AsOf],
    *,
    snapshot_id: str,
    patients: int,
    now: dt.datetime,
    force: bool = False,
) -> Plan:
    """The policy applied to every analysis of ``names`` (in their order)."""
    out = Plan()
    for name in names:
        carry, reason = _decide(name, previous.get(name), snapshot_id, patients, now, force)
        out.reasons[name] = reason
        if carry:
            out.carried[name] = previous[name]
        else:
            out.refit.append(name)
    return out


def _decide(
    name: str, last: AsOf | None, snapshot: str, patients: int, now: dt.datetime, force: bool
) -> tuple[bool, str]:
    """(carry over?, why) for one analysis."""
    if force:
        return False, "forced"
    if last is None or not last.tables:
        return False, "no earlier results to carry over"
    if last.snapshot_id == snapshot:
        return True, "already fitted on this snapshot"
    if name not in DEFERRABLE:
        return False, "refitted on every night the data changed"
    if patients <= SMALL_COHORT:
        return False, f"cohort of {patients} patients (<= {SMALL_COHORT})"
    age = now - dt.datetime.fromisoformat(last.fitted_at)
    if age >= dt.timedelta(days=REFIT_AFTER_DAYS):
        return False, f"last fit {age.days} days old (>= {REFIT_AFTER_DAYS:g})"
    if last.patients is None or abs(patients - last.patients) > COHORT_CHANGE * last.patients:
        return False, f"cohort changed from {last.patients} to {patients} patients"
    due = dt.datetime.fromisoformat(last.fitted_at) + dt.timedelta(days=REFIT_AFTER_DAYS)
    return True, f"carried over (fitted {last.fitted_at}; refit due by {due:%Y-%m-%d})"


def previous_fits(manifest: Mapping | None) -> dict[str, AsOf]:
    """Per analysis, what its results in a published manifest are as of."""
    if not manifest:
        return {}
    recorded = manifest.get("specification", {}).get("as_of", {})
    return {
        name: AsOf(
            entry["snapshot_id"],
            entry["run_id"],
            entry["fitted_at"],
            entry.get("patients"),
            tuple(entry.get("tables", ())),
        )
        for name, entry in recorded.items()
    }


def due(manifest: Mapping | None, snapshot_id: str, now: dt.datetime) -> list[str]:
    """The analyses a fit would refit now (none: the last publication is current), from
    the last published manifest alone (read before anything heavy is imported)."""
    previous = previous_fits(manifest)
    primary = previous.get("primary")
    if primary is None or primary.patients is None:
        return list(EVERY_CHANGED_NIGHT + DEFERRABLE)
    names = EVERY_CHANGED_NIGHT + DEFERRABLE
    return plan(names, previous, snapshot_id=snapshot_id, patients=primary.patients, now=now).refit

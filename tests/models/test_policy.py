"""The refit policy: which models a changed night refits, and which it carries over."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pytest

from models import policy
from models.suite import fit_and_publish_all
from tests.models.conftest import simulated_views

NOW = dt.datetime(2026, 11, 29, 2, 0, tzinfo=dt.UTC)
NAMES = ("primary", "interaction", "centre", "trajectory", "mediation", "descriptives")


def _fitted(days_ago: float, patients: int, snapshot: str = "old") -> dict[str, policy.AsOf]:
    when = (NOW - dt.timedelta(days=days_ago)).isoformat()
    return {n: policy.AsOf(snapshot, "run-old", when, patients, (f"{n}_t",)) for n in NAMES}


def _refit(previous, patients, snapshot="new", force=False) -> list[str]:
    return policy.plan(
        NAMES, previous, snapshot_id=snapshot, patients=patients, now=NOW, force=force
    ).refit


def test_policy_refits_only_primary_and_descriptives_of_a_large_recent_cohort():
    """A registry-sized cohort fitted two days ago, 1 % more patients: the slow models
    are carried over, with the date their refit is due."""
    plan = policy.plan(NAMES, _fitted(2, 1_000_000), snapshot_id="new", patients=1_010_000, now=NOW)
    assert plan.refit == ["primary", "descriptives"]
    assert set(plan.carried) == {"interaction", "centre", "trajectory", "mediation"}
    assert plan.reasons["trajectory"].endswith("refit due by 2026-12-04)")


@pytest.mark.parametrize(
    ("previous", "patients", "why"),
    [
        (_fitted(2, 15_000), 15_100, "small cohort"),
        (_fitted(7.5, 1_000_000), 1_000_100, "a week old"),
        (_fitted(1, 1_000_000), 1_060_000, "6 % more patients"),
        ({}, 1_000_000, "nothing published yet"),
    ],
)
def test_policy_refits_every_model_when_a_rule_says_so(previous, patients, why):
    assert _refit(previous, patients) == list(NAMES), why


def test_policy_forced_refits_all_and_the_same_snapshot_refits_none():
    assert _refit(_fitted(1, 1_000_000), 1_000_000, force=True) == list(NAMES)
    assert _refit(_fitted(1, 1_000_000, "same"), 1_000_000, snapshot="same") == []
    manifest = {"specification": {"as_of": {n: a.as_dict() for n, a in _fitted(1, 9).items()}}}
    assert policy.due(manifest, "old", NOW) == []
    assert policy.due(manifest, "new", NOW) == list(policy.EVERY_CHANGED_NIGHT + policy.DEFERRABLE)
    assert policy.due(None, "old", NOW) != []


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_suite_carries_the_slow_models_over_with_their_snapshot(tmp_path, monkeypatch):
    """Past the small-cohort size, a second fit on a new snapshot refits the primary model
    and the descriptive tables and republishes the others' files unchanged, the manifest
    saying which snapshot each is as of."""
    monkeypatch.setattr(policy, "SMALL_COHORT", 10)  # this small cohort counts as large
    views, _ = simulated_views(150, 21, n_centres=10)
    options = {"seed": 3, "n_rep": 20, "n_starts": 2}
    first = fit_and_publish_all(
        views, tmp_path / "run-1", run_id="run-1", snapshot_id="snap-1", **options
    )
    second = fit_and_publish_all(
        views,
        tmp_path / "run-2",
        run_id="run-2",
        snapshot_id="snap-2",
        previous=first.manifest,
        force=False,
        **options,
    )
    spec = json.loads(second.manifest.read_text())["specification"]
    as_of = {name: entry["snapshot_id"] for name, entry in spec["as_of"].items()}
    assert as_of == {
        "primary": "snap-2",
        "descriptives": "snap-2",
        "interaction": "snap-1",
        "centre": "snap-1",
        "trajectory": "snap-1",
        "mediation": "snap-1",
    }
    assert set(spec["fit_seconds"]) == {"primary", "descriptives"}
    assert sorted(second.carried) == ["centre", "interaction", "mediation", "trajectory"]
    for name in spec["as_of"]["trajectory"]["tables"] + spec["as_of"]["mediation"]["tables"]:
        assert _digest(tmp_path / "run-2" / f"{name}.parquet") == _digest(
            tmp_path / "run-1" / f"{name}.parquet"
        )
    assert second.trajectory_groups == first.trajectory_groups > 0
    assert second.mediation == first.mediation and second.interaction == first.interaction
    assert spec["refit_policy"]["tonight"]["trajectory"].startswith("carried over")

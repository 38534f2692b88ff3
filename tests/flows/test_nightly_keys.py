"""The nightly flow and the key, under Prefect's harness: the first night records the
key's fingerprint; a night with another key fails before writing anything, not even its
run row (the path of a scheduled night, which no CLI check precedes)."""

from __future__ import annotations

import dataclasses

import pytest

from cohortflow.errors import KeyMismatch
from cohortflow.settings import Settings
from tests.conftest import TEST_KEY
from tests.transforms.warehouse.test_keys import OTHER_KEY, file_contents
from transforms.warehouse import keys

pytestmark = pytest.mark.e2e


def test_nightly_with_another_key_fails_and_leaves_no_trace(prefect_harness, workspace):
    from flows.nightly import nightly

    settings = dataclasses.replace(Settings.from_env(workspace), settle_seconds=0.0)
    first = nightly(settings=settings.with_key(TEST_KEY), fit_models=False, check_quality=False)
    assert first.files and all(f.status == "loaded" for f in first.files)
    before = file_contents(workspace / "warehouse.duckdb")
    assert [row[0] for row in before["key_fingerprint"]] == [keys.fingerprint(TEST_KEY)]
    assert len(before["runs"]) == 1

    state = nightly(
        settings=settings.with_key(OTHER_KEY),
        fit_models=False,
        check_quality=False,
        return_state=True,
    )
    assert state.is_failed()
    refused = state.result(raise_on_failure=False)
    assert isinstance(refused, KeyMismatch) and "nothing was written" in str(refused)
    assert file_contents(workspace / "warehouse.duckdb") == before

"""The pseudonymisation key: environment first, else a Prefect Secret block."""

from __future__ import annotations

import pytest

from cohortflow.errors import ConfigError
from cohortflow.settings import Settings

pytestmark = pytest.mark.e2e


def test_key_comes_from_a_prefect_secret_block_when_not_in_the_environment(
    prefect_harness, tmp_path
):
    from prefect.blocks.system import Secret

    from flows.secrets import SECRET_BLOCK, resolve_pseudonym_key

    settings = Settings.from_env(tmp_path)
    with pytest.raises(ConfigError, match="COHORTFLOW_PSEUDONYM_KEY"):
        resolve_pseudonym_key(settings)
    Secret(value="from-the-block").save(SECRET_BLOCK, overwrite=True)
    try:
        assert resolve_pseudonym_key(settings) == "from-the-block"
        with_env = Settings(workspace=tmp_path).with_key("from-env")
        assert resolve_pseudonym_key(with_env) == "from-env"
        Secret(value="").save(SECRET_BLOCK, overwrite=True)
        with pytest.raises(ConfigError, match="is empty"):
            resolve_pseudonym_key(settings)
    finally:
        Secret.delete(SECRET_BLOCK)  # the harness is shared: leave no block behind

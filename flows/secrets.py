"""Where the pseudonymisation key comes from: the environment, else a Prefect Secret block."""

from __future__ import annotations

from cohortflow.errors import ConfigError
from cohortflow.settings import KEY_VARIABLE, Settings

SECRET_BLOCK = "cohortflow-pseudonym-key"


def resolve_pseudonym_key(settings: Settings) -> str:
    """The key from ``COHORTFLOW_PSEUDONYM_KEY``, else from the Prefect Secret block
    ``cohortflow-pseudonym-key`` (on a Prefect server); never logged or stored."""
    if settings.pseudonym_key is not None:
        return settings.require_key()
    from prefect.blocks.system import Secret
    from prefect.settings import PREFECT_API_URL

    try:
        if not PREFECT_API_URL.value():  # blocks live on a server; none is configured
            raise ValueError("no Prefect server")
        block = Secret.load(SECRET_BLOCK)  # sync here: this is no coroutine
        value = block.get()  # type: ignore[union-attr]  # load() is typed sync-or-async
    except (ValueError, RuntimeError) as exc:
        raise ConfigError(
            f"no pseudonymisation key: set {KEY_VARIABLE}, or save a Prefect Secret block "
            f"named {SECRET_BLOCK!r} (a long random secret, the same every night)"
        ) from exc
    if not value:
        raise ConfigError(f"the Prefect Secret block {SECRET_BLOCK!r} is empty")
    return str(value)

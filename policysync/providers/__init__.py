"""The providers, by the name the settings give them (`provider = "stytch"`), each
built once, from the environment, by `build`. A provider's module is imported only when
it is built: `validate`, which runs in pre-commit hooks, loads no HTTP stack."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import NamedTuple

from policysync.config import MAX_WAIT_SECONDS, NamedEnvironment
from policysync.errors import ConfigError
from policysync.providers.base import Provider

# name -> the module whose `from_env(environ, pacing, environment)` builds it
PROVIDERS = {"stytch": "policysync.providers.stytch", "zenml": "policysync.providers.zenml"}


class Pacing(NamedTuple):
    """How hard a provider may be driven: requests in flight, requests per second; and
    how long one request may wait to be tried again, in all (seconds)."""

    parallelism: int = 16
    rate_limit: float | None = None
    max_wait: float = MAX_WAIT_SECONDS


def build(
    name: str,
    environ: Mapping[str, str],
    pacing: Pacing,
    environment: NamedEnvironment | None = None,
) -> Provider:
    """The provider `name`, its credentials and endpoint read from `environ`: from the
    variables `environment` names (`--env`), or else the provider's standard ones."""
    if name not in PROVIDERS:
        known = ", ".join(sorted(PROVIDERS))
        raise ConfigError(f"provider {name!r} is not one policysync knows: use one of {known}")
    module = importlib.import_module(PROVIDERS[name])
    provider: Provider = module.from_env(environ, pacing, environment)
    return provider

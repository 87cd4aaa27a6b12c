"""Stytch B2B RBAC (wire contract: stytch-api.md): the client and its endpoint."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from policysync.client import StytchClient
from policysync.endpoint import endpoint_from_env

if TYPE_CHECKING:
    from policysync.providers import Pacing
    from policysync.providers.base import Provider


def from_env(environ: Mapping[str, str], pacing: Pacing) -> Provider:
    """STYTCH_PROJECT_ID, STYTCH_SECRET and, optionally, STYTCH_BASE_URL."""
    return StytchClient(
        endpoint_from_env(environ), parallelism=pacing.parallelism, rate_limit=pacing.rate_limit
    )

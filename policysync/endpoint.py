"""Where Stytch is, and the credentials policysync presents there.

Read from the environment under the names Stytch's own tools use. The base URL is
checked before any credential is sent to it: plain http:// only on loopback, where the
secret cannot cross a network in clear text.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from pydantic import SecretStr

from policysync.errors import ConfigError

LIVE_URL = "https://api.stytch.com/"
TEST_URL = "https://test.stytch.com/"


@dataclass(frozen=True)
class Endpoint:
    """A Stytch project and the URL of its API. The secret is a SecretStr, so that a
    repr, a log line or a traceback's locals show `**********` instead of it."""

    project_id: str
    secret: SecretStr
    base_url: str

    def __post_init__(self) -> None:
        check_base_url(self.base_url)


def endpoint_from_env(environ: Mapping[str, str]) -> Endpoint:
    """STYTCH_PROJECT_ID, STYTCH_SECRET and, optionally, STYTCH_BASE_URL."""
    project_id = environ.get("STYTCH_PROJECT_ID", "").strip()
    secret = environ.get("STYTCH_SECRET", "").strip()
    missing = [
        n for n, v in (("STYTCH_PROJECT_ID", project_id), ("STYTCH_SECRET", secret)) if not v
    ]
    if missing:
        raise ConfigError(
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set: set "
            "STYTCH_PROJECT_ID and STYTCH_SECRET to the project's API credentials (Stytch "
            "dashboard, API keys), or to those `policysync emulator` prints"
        )
    base_url = environ.get("STYTCH_BASE_URL", "").strip() or default_base_url(project_id)
    return Endpoint(project_id, SecretStr(secret), base_url.rstrip("/") + "/")


def default_base_url(project_id: str) -> str:
    """The host Stytch's SDKs pick: live for live projects, test for all others."""
    return LIVE_URL if project_id.startswith("project-live-") else TEST_URL


def check_base_url(url: str) -> None:
    """Raise ConfigError unless credentials may be sent to `url`."""
    if "@" in url:  # before anything that would echo the URL: it may hold a password
        raise ConfigError(
            "the base URL holds credentials (an '@'): remove them from STYTCH_BASE_URL and "
            "set STYTCH_PROJECT_ID and STYTCH_SECRET instead"
        )
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError for a port that is not a number)
    except ValueError as exc:
        raise ConfigError(f"base URL {url!r}: {exc}; set STYTCH_BASE_URL to a URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"base URL {url!r} is not an http(s) URL: set STYTCH_BASE_URL to one, "
            "e.g. https://test.stytch.com/ (or unset it to use Stytch's)"
        )
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConfigError(
            f"base URL {url!r}: plain http:// would send the secret unencrypted; it is "
            "accepted only for loopback hosts (127.0.0.0/8, ::1, localhost): set STYTCH_BASE_URL "
            "to an https:// URL"
        )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

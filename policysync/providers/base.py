"""What the core needs of a live system, whatever the system: the seam where a
provider goes (Terraform's providers apply the changes its core planned).

A provider reads the catalog the files are validated against (Stytch's project
policy), lists organizations, reads one organization's roles and writes its desired
roles given what was read. Whatever fails is raised from the one tree of
`policysync.errors`:

    ProviderError            a request failed, after the provider's own retries
    ├── ApiError             the system answered with an error, or an unreadable answer
    └── TransportError       no answer: connection refused or dropped, timeout

with the system's error type and request id as data, so that a plan, a journal and a
view can report them without knowing whose they are.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import TracebackType
from typing import Protocol, Self

from policysync.errors import ApiError, ProviderError, TransportError
from policysync.models import Organization, OrgPolicy, ProjectPolicy

__all__ = ["ApiError", "Provider", "ProviderError", "TransportError"]


class Provider(Protocol):
    """A live system's organizations, as `async with provider:` uses them.

    `project_id` names what is written to (plans made for one are refused by another).
    Organizations are named as in the files (for Stytch: an id, a slug or an external
    id): resolving a name is the provider's business.
    """

    @property
    def project_id(self) -> str: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...

    async def read_catalog(self) -> ProjectPolicy:
        """What the files are validated against: the roles and resources of the project."""
        ...

    async def read_org(self, organization_id: str) -> OrgPolicy:
        """The organization's roles as they are live."""
        ...

    async def write_org(
        self, organization_id: str, policy: OrgPolicy, prior: OrgPolicy | None = None
    ) -> OrgPolicy:
        """Make the organization's roles `policy`, `prior` being what was read just
        before; returns what the system stored. Safe to call again after a fault."""
        ...

    def list_orgs(self, limit: int = 1000) -> AsyncIterator[Organization]:
        """Every organization, `limit` per page."""
        ...

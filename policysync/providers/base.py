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

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from types import TracebackType
from typing import Protocol, Self

from policysync.errors import ApiError, ProviderError, TransportError
from policysync.models import Organization, OrgPolicy, ProjectPolicy, RoleHolders, RoleOperation

__all__ = ["ApiError", "Log", "Provider", "ProviderError", "TransportError"]

# Told of each role operation once it landed (providers that write role by role): the
# core journals it before the next one is sent.
Log = Callable[[RoleOperation], Awaitable[None]]


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

    async def holders(
        self, organization_id: str, role_ids: Sequence[str]
    ) -> tuple[RoleHolders, ...]:
        """Who depends on each of the roles `role_ids` (those a write would delete): for
        the plan's `in_use` (summarised by the provider's `FileFormat.in_use`) and the
        journal: a rollback that re-creates a role gives it back to them. A role nothing
        depends on may be left out."""
        ...

    async def write_org(
        self,
        organization_id: str,
        policy: OrgPolicy,
        prior: OrgPolicy | None = None,
        *,
        holders: Sequence[RoleHolders] = (),
        log: Log | None = None,
    ) -> OrgPolicy:
        """Make the organization's roles `policy`, `prior` being what was read just
        before; returns what the system stored. A role `policy` has and live has not is
        given to its `holders` (those a rollback restores); `log` is told of each role
        operation as it lands. Safe to call again after a fault."""
        ...

    def list_orgs(self, limit: int = 1000) -> AsyncIterator[Organization]:
        """Every organization, `limit` per page."""
        ...

"""The seed file: a project policy and organizations with their org policies; and the
state the emulator starts with when there is none: a new project's.

The same shape is what `policysync emulator --dump` prints, so a dump seeds again.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from policysync.default_project import DEFAULT_POLICY
from policysync.models import OrgPolicy, ProjectPolicy


class SeedOrganization(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    organization_id: str = Field(min_length=1)
    organization_name: str = ""
    organization_slug: str = Field(min_length=1)
    organization_external_id: str | None = None
    org_policy: OrgPolicy = OrgPolicy(roles=())
    # Organizations for which the org-policy feature answers 401 enterprise_endpoint.
    org_policy_disabled: bool = False


class Seed(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    policy: ProjectPolicy
    organizations: tuple[SeedOrganization, ...] = ()


# A new project's policy (`DEFAULT_POLICY`): the emulator serves it when started on an
# empty database without --seed.
DEFAULT_SEED = Seed(policy=DEFAULT_POLICY)

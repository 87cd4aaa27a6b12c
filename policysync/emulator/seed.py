"""The seed file: a project policy and organizations with their org policies.

The same shape is what `policysync emulator --dump` prints, so a dump seeds again.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

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

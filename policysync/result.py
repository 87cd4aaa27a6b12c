"""What an apply or rollback run did: one result per organization, and their sum
(`--format json` of apply and rollback, described by `schemas/run-result.schema.json`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from policysync.plan import OrgError

_CONFIG = ConfigDict(frozen=True, extra="forbid")

Result = Literal["applied", "unchanged", "stale", "failed", "unknown", "absent"]


class OrgResult(BaseModel):
    """What a run did to one organization."""

    model_config = _CONFIG

    organization_id: str
    result: Result = Field(
        description="applied: written and echoed back; unchanged: nothing to write (live "
        "already as wanted); stale: left alone, live changed since the plan or the run; "
        "failed: could not be read or written (see error), known not to have landed; "
        "unknown: written, but its outcome is not known (its answer was lost, see error): "
        "it may have landed; absent: not in the run's environment (--env), skipped."
    )
    error: OrgError | None = Field(
        description="Why it is stale, failed, unknown or absent; null otherwise."
    )


class RunResult(BaseModel):
    """The summary of an apply or rollback run (`--format json`)."""

    model_config = _CONFIG

    format_version: Literal["1"]
    kind: Literal["apply", "rollback"]
    run_id: str | None = Field(description="The journal's run id; null if nothing was written.")
    journal: str | None = Field(description="The run's journal folder; null likewise.")
    project_id: str
    applied: int = Field(ge=0)
    unchanged: int = Field(ge=0)
    stale: int = Field(ge=0)
    failed: int = Field(ge=0)
    unknown: int = Field(ge=0, description="Written with an outcome not known: see `result`.")
    absent: int = Field(
        0, ge=0, description="Not in the run's environment (--env): skipped, not an error."
    )
    organizations: tuple[OrgResult, ...] = Field(description="Sorted by organization_id.")

    @property
    def complete(self) -> bool:
        """Every planned change was made."""
        return self.stale == 0 and self.failed == 0 and self.unknown == 0

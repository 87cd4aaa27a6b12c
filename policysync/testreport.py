"""The result of `policysync test`, as one value every renderer formats.

Its JSON form (`--format json`) is described by `schemas/test-report.schema.json`,
generated from these classes.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

_CONFIG = ConfigDict(frozen=True, extra="forbid")


class RoleGrant(BaseModel):
    """A role the member holds that grants the action."""

    model_config = _CONFIG

    role: str
    source: str = Field(description="The file that defines the role.")
    wildcard: bool = Field(description='Granted through the wildcard action (`"*"`).')


class AssertionResult(BaseModel):
    model_config = _CONFIG

    expect: Literal["allow", "deny"]
    resource: str
    action: str
    passed: bool
    line: int = Field(ge=1, description="Of the assertion in its test file.")
    column: int = Field(ge=1)
    pointer: str = Field(description="RFC 6901 JSON pointer to the assertion.")
    granted_by: tuple[RoleGrant, ...] = Field(description="`[]`: no role held grants it.")
    explanation: str = Field(
        description='Why it failed: which roles grant or lack it; "" when it passed.'
    )


class CaseResult(BaseModel):
    model_config = _CONFIG

    name: str
    organization: str = Field(description="As the test names it.")
    roles: tuple[str, ...] = Field(
        description="The roles the member holds: those named, with those every member holds."
    )
    file: str
    line: int = Field(ge=1)
    column: int = Field(ge=1)
    passed: bool
    assertions: tuple[AssertionResult, ...]


class SuiteSummary(BaseModel):
    model_config = _CONFIG

    files: int = Field(ge=0)
    tests: int = Field(ge=0)
    assertions: int = Field(ge=0)
    failed: int = Field(ge=0, description="Assertions that do not hold.")
    failed_tests: int = Field(ge=0)


class SuiteReport(BaseModel):
    """The outcome of `policysync test`."""

    model_config = _CONFIG

    format_version: Literal["1"] = "1"
    passed: bool = Field(description="True when every assertion holds.")
    summary: SuiteSummary
    files: tuple[str, ...] = Field(description="The test files run, in order.")
    tests: tuple[CaseResult, ...]

    @classmethod
    def build(cls, files: tuple[str, ...], tests: tuple[CaseResult, ...]) -> SuiteReport:
        failed = sum(not a.passed for t in tests for a in t.assertions)
        summary = SuiteSummary(
            files=len(files),
            tests=len(tests),
            assertions=sum(len(t.assertions) for t in tests),
            failed=failed,
            failed_tests=sum(not t.passed for t in tests),
        )
        return cls(passed=failed == 0, summary=summary, files=files, tests=tests)

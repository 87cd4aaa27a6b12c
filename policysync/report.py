"""The result of `validate`, as one value every renderer formats.

Its JSON form (`--format json`) is described by `schemas/validate-report.schema.json`,
generated from these classes.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from policysync.diagnostics import Diagnostic, Severity


class DiagnosticRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    file: str = Field(description="Path of the file, as policysync found it.")
    line: int = Field(ge=1)
    column: int = Field(ge=1, description="1-based, counted in characters.")
    pointer: str = Field(description="RFC 6901 JSON pointer to the value concerned.")
    code: str = Field(description="Stable identifier, documented in the README.")
    severity: Severity
    message: str = Field(description="What is wrong and what to do.")


class ValidationReport(BaseModel):
    """The outcome of `policysync validate`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format_version: Literal["1"] = "1"
    valid: bool = Field(description="False when an error was found (or a warning, with --strict).")
    strict: bool
    files_checked: int = Field(ge=0)
    organizations: int = Field(ge=0, description="Organization files that were read.")
    error_count: int = Field(ge=0)
    warning_count: int = Field(ge=0)
    diagnostics: tuple[DiagnosticRecord, ...]

    @classmethod
    def build(
        cls, diagnostics: list[Diagnostic], files_checked: int, organizations: int, strict: bool
    ) -> ValidationReport:
        records = tuple(
            DiagnosticRecord(
                file=_encodable(d.file),
                line=d.line,
                column=d.column,
                pointer=_encodable(d.pointer),
                code=d.code,
                severity=d.severity,
                message=_encodable(d.message),
            )
            for d in diagnostics
        )
        errors = sum(1 for r in records if r.severity is Severity.ERROR)
        warnings = len(records) - errors
        return cls(
            valid=errors == 0 and not (strict and warnings),
            strict=strict,
            files_checked=files_checked,
            organizations=organizations,
            error_count=errors,
            warning_count=warnings,
            diagnostics=records,
        )


def _encodable(text: str) -> str:
    """`text` with lone surrogates (undecodable file names, `\\ud800` escapes in keys)
    written as escapes, so that every renderer can encode it as UTF-8."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")

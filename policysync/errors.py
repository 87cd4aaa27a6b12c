"""Program faults and fatal conditions, as one small tree of exceptions.

User mistakes inside policy files are not exceptions: they are Diagnostic values.
What is raised here stops a command (or, for ProviderError, one organization's part of
it); the CLI prints its message and exits 1.

    PolicysyncError
    ├── ConfigError              a configuration file, option or variable cannot be used
    ├── UsageError               the command line asks for something impossible
    ├── JournalError             the journal cannot be written, or another run holds it
    ├── RunStopped               a run stopped before its end (Ctrl-C, the journal failed)
    └── ProviderError            a request to the provider failed, after any retries
        ├── ApiError             the provider answered, with an error or an unreadable answer
        └── TransportError       no answer: connection refused or dropped, timeout

The provider's own vocabulary (its error types, its request ids) travels as data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from policysync.result import RunResult

# The error type every provider reports for an organization that does not exist (the
# name is Stytch's; other providers map their own "not found" to it).
ORGANIZATION_NOT_FOUND = "organization_not_found"


class PolicysyncError(Exception):
    """Base of every error policysync raises on purpose. Its message says what to do."""


class ConfigError(PolicysyncError):
    pass


class UsageError(PolicysyncError):
    pass


class JournalError(PolicysyncError):
    """The journal folder cannot be used: a file of it cannot be written (the message
    names the path and the OS's error), or another run holds its lock."""


class RunStopped(PolicysyncError):
    """An apply or rollback stopped before its end: no organization was started after
    the moment it stopped. `result` is what it did until then; `interrupted` tells
    Ctrl-C (exit 130) from a failure (exit 1)."""

    error_type = "run_stopped"  # of each organization it did not write, in `result`

    def __init__(self, reason: str, result: RunResult, interrupted: bool) -> None:
        self.reason = reason
        self.result = result
        self.interrupted = interrupted
        super().__init__(reason)


class ProviderError(PolicysyncError):
    """A request to the provider failed. The fields let a caller report it as data (a
    plan's per-organization error); str() is the whole sentence, naming the organization.

    `status` is None when no answer came; `message` is the explanation alone; `provider`
    names who answered, for people. `outcome_unknown` is True when the request may have
    been carried out all the same (an answer lost after sending, a timeout waiting for
    it, a 5xx, a 200 that cannot be read): for a write, its outcome is not known.
    """

    def __init__(
        self,
        status: int | None,
        error_type: str,
        message: str,
        request_id: str | None,
        organization_id: str | None = None,
        hint: str = "",
        provider: str = "the provider",
        *,
        outcome_unknown: bool = False,
    ) -> None:
        self.status = status
        self.outcome_unknown = outcome_unknown
        self.error_type = error_type
        self.message = message
        self.request_id = request_id
        self.organization_id = organization_id
        where = f"organization {organization_id}: " if organization_id else ""
        answer = f"{provider} answered {status} {error_type}" if status is not None else error_type
        request = f" (request id {request_id})" if request_id else ""
        super().__init__(f"{where}{answer}: {message}{request}" + (f"; {hint}" if hint else ""))


class ApiError(ProviderError):
    """Any answer but success: the provider's error body, or what stood in for it (a
    proxy's page). A success whose body policysync cannot read is one too
    (`unexpected_response`)."""


class TransportError(ProviderError):
    """No usable answer: the connection failed or dropped, or the answer took too long."""

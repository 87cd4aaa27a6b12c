"""Program faults and fatal conditions, as one small tree of exceptions.

User mistakes inside policy files are not exceptions: they are Diagnostic values.
What is raised here stops a command (or, for StytchError, one organization's part of
it); the CLI prints its message and exits 1.

    PolicysyncError
    ├── ConfigError              a configuration file, option or variable cannot be used
    ├── UsageError               the command line asks for something impossible
    └── StytchError              a request to Stytch failed, after any retries
        ├── StytchApiError       Stytch answered, with an error or an unreadable answer
        └── StytchTransportError no answer: connection refused or dropped, timeout
"""

from __future__ import annotations


class PolicysyncError(Exception):
    """Base of every error policysync raises on purpose. Its message says what to do."""


class ConfigError(PolicysyncError):
    pass


class UsageError(PolicysyncError):
    pass


class StytchError(PolicysyncError):
    """A request to Stytch failed. The fields let a caller report it as data (a plan's
    per-organization error); str() is the whole sentence, naming the organization.

    `status` is None when no answer came; `message` is the explanation alone.
    """

    def __init__(
        self,
        status: int | None,
        error_type: str,
        message: str,
        request_id: str | None,
        organization_id: str | None = None,
        hint: str = "",
    ) -> None:
        self.status = status
        self.error_type = error_type
        self.message = message
        self.request_id = request_id
        self.organization_id = organization_id
        where = f"organization {organization_id}: " if organization_id else ""
        answer = f"Stytch answered {status} {error_type}" if status is not None else error_type
        request = f" (request id {request_id})" if request_id else ""
        super().__init__(f"{where}{answer}: {message}{request}" + (f"; {hint}" if hint else ""))


class StytchApiError(StytchError):
    """Any answer but 200: Stytch's error body, or what stood in for it (a proxy's page).
    A 200 whose body policysync cannot read is one too (`unexpected_response`)."""


class StytchTransportError(StytchError):
    """No usable answer: the connection failed or dropped, or the answer took too long."""

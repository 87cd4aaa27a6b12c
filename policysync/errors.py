"""Program faults and fatal conditions, as one small tree of exceptions.

User mistakes inside policy files are not exceptions: they are Diagnostic values.
What is raised here stops a command; the CLI prints its message and exits 1.

    PolicysyncError
    ├── ConfigError          a configuration file or option cannot be used
    └── UsageError           the command line asks for something impossible
"""

from __future__ import annotations


class PolicysyncError(Exception):
    """Base of every error policysync raises on purpose. Its message says what to do."""


class ConfigError(PolicysyncError):
    pass


class UsageError(PolicysyncError):
    pass

"""A Stytch-compatible RBAC API server, for trying policysync and for tests.

A subpackage of its own: the core never imports it. It speaks the wire contract of
Stytch's B2B RBAC endpoints (`create_app`), keeps its state in SQLite (`Store`) and can
misbehave on purpose (`Faults`).
"""

# The longest request body read (`--max-body-bytes`; bodies.py bounds them). A PUT of
# an org policy at the default [limits] (100 roles, 1 KiB descriptions) is well under it.
MAX_BODY_BYTES = 1_048_576

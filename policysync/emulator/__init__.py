"""A Stytch-compatible RBAC API server, for trying policysync and for tests.

A subpackage of its own: the core never imports it. It speaks the wire contract of
Stytch's B2B RBAC endpoints (`create_app`), keeps its state in SQLite (`Store`) and can
misbehave on purpose (`Faults`).
"""

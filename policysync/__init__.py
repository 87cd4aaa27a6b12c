"""policysync: organization-scoped Stytch RBAC policies kept in git."""

__version__ = "0.1.0"

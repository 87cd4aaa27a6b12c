"""The guards of apply, checked before anything is written: deleting roles needs
`allow_delete`, and a plan changing more than a configured share of the managed
organizations needs `force` (octoDNS's "too much change" guard)."""

from __future__ import annotations

from typing import NamedTuple

from policysync.config import ApplySettings
from policysync.errors import UsageError
from policysync.plan import Plan


class Deletion(NamedTuple):
    organization_id: str
    role_id: str


def deletions(plan: Plan) -> list[Deletion]:
    return [
        Deletion(org.organization_id, change.role_id)
        for org in plan.changes
        for change in org.role_changes
        if change.action == "delete"
    ]


def check_guards(plan: Plan, allow_delete: bool, force: bool, guard: ApplySettings) -> None:
    """Refuse (UsageError) a plan that deletes roles without `allow_delete`, or that
    changes too many organizations without `force`. Nothing has been written yet."""
    gone = deletions(plan)
    if gone and not allow_delete:
        shown = "\n".join(f"  - role {d.role_id} in {d.organization_id}" for d in gone[:50])
        more = f"\n  … and {len(gone) - 50} more" if len(gone) > 50 else ""
        raise UsageError(
            f"the plan deletes {len(gone)} role{'s' * (len(gone) != 1)}; nothing was "
            f"written:\n{shown}{more}\nmembers holding a deleted role lose its permissions: "
            "if that is intended, run again with --allow-delete"
        )
    managed, changed = plan.summary.organizations, plan.summary.changed
    too_many = changed > guard.max_change_share * managed
    if too_many and managed >= guard.guard_min_organizations and not force:
        raise UsageError(
            f"the plan changes {changed} of {managed} organizations, more than "
            f"{guard.max_change_share:.0%} (apply.max_change_share); nothing was written: "
            "review the plan, then run again with --force"
        )

"""The guards of apply, checked before anything is written: deleting roles needs
`allow_delete`, deleting a role something depends on (members, rules, assignments: the
plan's `in_use`) also needs `allow_delete_in_use`, and a plan changing more than a
configured share of the managed organizations needs `force` (octoDNS's "too much change"
guard)."""

from __future__ import annotations

from typing import NamedTuple

from policysync.config import ApplySettings
from policysync.errors import UsageError
from policysync.plan import Plan, in_use_deletions


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


def check_guards(
    plan: Plan,
    allow_delete: bool,
    force: bool,
    guard: ApplySettings,
    allow_delete_in_use: bool = False,
) -> None:
    """Refuse (UsageError) a plan that deletes roles without `allow_delete`, roles in use
    without `allow_delete_in_use`, or that changes too many organizations without
    `force`. Nothing has been written yet."""
    gone = deletions(plan)
    if gone and not allow_delete:
        shown = "\n".join(f"  - role {d.role_id} in {d.organization_id}" for d in gone[:50])
        more = f"\n  … and {len(gone) - 50} more" if len(gone) > 50 else ""
        raise UsageError(
            f"the plan deletes {len(gone)} role{'s' * (len(gone) != 1)}; nothing was "
            f"written:\n{shown}{more}\nmembers holding a deleted role lose its permissions: "
            "if that is intended, run again with --allow-delete"
        )
    in_use = in_use_deletions(plan)
    if in_use and not allow_delete_in_use:
        shown = "\n".join(
            f"  - role {change.role_id} in {org.organization_id}: "
            f"{change.in_use.describe() if change.in_use else ''}"
            for org, change in in_use[:50]
        )
        more = f"\n  … and {len(in_use) - 50} more" if len(in_use) > 50 else ""
        raise UsageError(
            f"the plan deletes {len(in_use)} role{'s' * (len(in_use) != 1)} in use; nothing "
            f"was written:\n{shown}{more}\nwhoever holds a deleted role loses its "
            "permissions: if that is intended, run again with --allow-delete-in-use too"
        )
    managed, changed = plan.summary.organizations, plan.summary.changed
    too_many = changed > guard.max_change_share * managed
    if too_many and managed >= guard.guard_min_organizations and not force:
        raise UsageError(
            f"the plan changes {changed} of {managed} organizations, more than "
            f"{guard.max_change_share:.0%} (apply.max_change_share); nothing was written: "
            "review the plan, then run again with --force"
        )

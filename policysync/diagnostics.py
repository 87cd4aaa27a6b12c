"""Diagnostics: user mistakes as values, each with a place, a stable code and a remedy.

Every code policysync can report is registered in CODES; the README's table of codes
is checked against it by a test, so a code cannot exist undocumented.
"""

from __future__ import annotations

import difflib
import enum
import json
from collections.abc import Iterable
from typing import NamedTuple


class Severity(enum.StrEnum):
    ERROR = "error"
    WARNING = "warning"


class Code(NamedTuple):
    severity: Severity
    summary: str


E, W = Severity.ERROR, Severity.WARNING

CODES: dict[str, Code] = {
    # Reading files
    "file-unreadable": Code(
        E, "the file or folder cannot be read (missing, permissions, not a file)"
    ),
    "file-outside-root": Code(E, "a symlink leads outside the policies folder"),
    "file-too-large": Code(E, "the file is larger than `limits.max_file_bytes`"),
    "file-empty": Code(E, "the file is empty or holds only whitespace"),
    "file-encoding": Code(E, "the file is not UTF-8 (UTF-16, UTF-32, Latin-1, binary...)"),
    "file-bom": Code(W, "the file starts with a UTF-8 byte order mark (read, but remove it)"),
    "file-ignored": Code(
        W, "a file in `orgs/` or `tests/` that is not a `.json` file, or a sub-folder: not read"
    ),
    "project-missing": Code(E, "`policies/project.json` does not exist"),
    "orgs-missing": Code(W, "`policies/orgs/` does not exist or holds no organization file"),
    # Parsing JSON
    "json-syntax": Code(E, "the file is not valid JSON"),
    "json-duplicate-key": Code(E, "the same key appears twice in one object"),
    "json-surrogate": Code(E, "an escaped lone UTF-16 surrogate, which no UTF-8 text can hold"),
    "json-too-deep": Code(
        E, "arrays and objects are nested deeper than `limits.max_nesting_depth`"
    ),
    # The schemas
    "schema-missing-field": Code(E, "a required field is missing"),
    "schema-unknown-field": Code(E, "a field the schema does not define (often a typo)"),
    "schema-type": Code(E, "a value has the wrong JSON type"),
    # Project policy
    "project-resource-duplicate": Code(E, "two project resources share a `resource_id`"),
    "project-role-duplicate": Code(E, "two project roles share a `role_id`"),
    "project-stale": Code(W, "`project.json` differs from the live project policy (plan, drift)"),
    "project-invalid": Code(
        E, "organization files cannot be checked: the project policy is invalid"
    ),
    # Organization files: Stytch's rules 1 to 6
    "role-duplicate": Code(E, "rule 1: two roles of one organization share a `role_id`"),
    "role-project-conflict": Code(
        E, "rule 2: a `role_id` equals a project role (defaults included)"
    ),
    "resource-unknown": Code(E, "rule 3: a `resource_id` the project policy does not define"),
    "actions-empty": Code(E, "rule 4: a permission with no actions"),
    "wildcard-not-alone": Code(E, 'rule 5: `"*"` listed together with other actions'),
    "action-blank": Code(E, "rule 6: an empty or whitespace-only action"),
    "action-unknown": Code(E, "rule 6: an action the resource does not declare"),
    # Organization files: policysync's rules and Stytch's server-side limits
    "org-duplicate": Code(E, "two files name the same organization"),
    "org-id-invalid": Code(
        E, "an `organization_id` that cannot be a Stytch id, slug or external id"
    ),
    "role-id-invalid": Code(
        E, "an empty `role_id`, or one with leading/trailing whitespace or invisible characters"
    ),
    "role-reserved-prefix": Code(E, "a `role_id` starting with the reserved prefix `stytch_`"),
    "role-no-permissions": Code(E, "a role without permissions"),
    "action-duplicate": Code(E, "the same action twice in one permission"),
    "resource-repeated": Code(W, "the same resource in two permissions of one role (merge them)"),
    "role-id-too-long": Code(E, "a `role_id` longer than `limits.max_role_id_length`"),
    "description-too-long": Code(E, "a description longer than `limits.max_description_length`"),
    "action-too-long": Code(E, "an action longer than `limits.max_action_length`"),
    "too-many-roles": Code(E, "more roles than `limits.max_roles_per_org`"),
    # ZenML Pro organization files (`provider = "zenml"`)
    "zenml-level-unknown": Code(
        E, "a role's `level` is not `organization`, `workspace` or `project`"
    ),
    "zenml-resource-unknown": Code(
        E, "a `resource` not in the vocabulary of the role's level (built in or `permissions.json`)"
    ),
    "zenml-action-unknown": Code(
        E, "an `action` not in the vocabulary of the role's level (built in or `permissions.json`)"
    ),
    "zenml-role-system-managed": Code(
        E, "a custom role takes the name of a system-managed (predefined) role"
    ),
    "zenml-role-duplicate": Code(E, "two roles of one organization share `(level, name)`"),
    # Templates (`policies/templates/`, named in organization files' `templates`)
    "template-unknown": Code(E, "an organization names a template `templates/` does not hold"),
    "template-repeated": Code(E, "an organization names the same template twice"),
    "template-role-conflict": Code(
        E, "a role comes from two places: two templates, or a template and the file"
    ),
    # House rules (`house_rules` in the settings)
    "house-rule": Code(E, "a file violates one of the house rules (the team's own JSON Schemas)"),
    "house-rule-invalid": Code(
        E,
        "a `house_rules` glob matches no file, or a schema is not a valid draft 2020-12 one",
    ),
    # Policy tests (`policies/tests/*.json`)
    "test-org-unknown": Code(E, "a test names an organization no organization file names"),
    "test-role-unknown": Code(
        E,
        "a test names a role neither the project nor the organization has (ZenML: or "
        "a name two levels share, or a system-managed role)",
    ),
    "test-resource-unknown": Code(E, "a test names a resource the tree does not declare"),
    "test-action-unknown": Code(E, "a test names an action its resource does not declare"),
}

# The codes of Stytch's own rules ("Rules an org policy must satisfy", 1 to 6): exactly
# the ones the official SDK's validate_org_policy checks.
STYTCH_RULE_CODES = frozenset(
    {
        "role-duplicate",
        "role-project-conflict",
        "resource-unknown",
        "actions-empty",
        "wildcard-not-alone",
        "action-blank",
        "action-unknown",
    }
)


class Diagnostic(NamedTuple):
    """One finding. Fields are ordered so that sorting sorts by place."""

    file: str
    line: int
    column: int
    code: str
    pointer: str
    message: str

    @property
    def severity(self) -> Severity:
        return CODES[self.code].severity


def sort_diagnostics(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    return sorted(set(diagnostics))


def pointer(*parts: str | int) -> str:
    """An RFC 6901 JSON pointer from path parts."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def suggest(value: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.75)
    return f" (did you mean {q(close[0])}?)" if close else ""


def q(value: str) -> str:
    """A user's value quoted for a message, with invisible characters made visible."""
    return "".join(
        c if c.isprintable() else _escape(c) for c in json.dumps(value, ensure_ascii=False)
    )


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"

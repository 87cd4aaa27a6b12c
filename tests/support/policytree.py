"""The desired org policies of a policy tree, its templates expanded, as plan sees them."""

from __future__ import annotations

from pathlib import Path

from policysync.config import Limits
from policysync.formats import file_format
from policysync.models import OrgPolicy
from policysync.templates import expand, read_templates


def expanded_policies(root: Path, provider: str = "stytch") -> dict[str, OrgPolicy]:
    """organization_id (as written) -> its desired policy, templates expanded."""
    files_of = file_format(provider)
    templates = read_templates(root, files_of.parse_template, Limits())
    out = {}
    for path in sorted((root / "orgs").glob("*.json")):
        document = files_of.parse_policy(path.read_bytes())
        out[document.organization_id] = expand(document, templates).policy
    return out

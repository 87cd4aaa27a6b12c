"""The HTTP API: Stytch's B2B RBAC endpoints, with Stytch's shapes and error bodies;
and what tells who holds a role: member search, a member's roles updated, an
organization's email-domain rules, its SAML connections and its SCIM connection.

Tolerates what the official SDKs do: a query string on GET, `organization_id` in the PUT
body, omitted empty fields (`"org_policy": {}`, no `description`). Path parameters are
read from the raw path, so a percent-encoded `/` stays inside the id.
"""

from __future__ import annotations

import base64
import hmac
import json
import math
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any, TypeGuard
from urllib.parse import unquote

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from policysync.config import Limits
from policysync.emulator import MAX_BODY_BYTES
from policysync.emulator.bodies import BodyLimit
from policysync.emulator.seed import OrgRules, SeedMember
from policysync.emulator.store import Organization, Store
from policysync.models import OrgPolicy
from policysync.rules import ProjectIndex, check_org_policy

# The rules Stytch's server enforces on PUT, and the error_type it answers for each.
ERROR_TYPES = {
    "role-duplicate": "rbac_role_duplicate",
    "role-project-conflict": "rbac_org_custom_roles_only",
    "resource-unknown": "invalid_permission_resource",
    "actions-empty": "rbac_permission_missing_actions",
    "wildcard-not-alone": "cannot_specify_wildcard_with_other_actions",
    "action-blank": "invalid_permission_action",
    "action-unknown": "invalid_permission_action",
    "role-id-too-long": "rbac_role_id_too_long",
    "description-too-long": "rbac_description_too_long",
    "action-too-long": "rbac_action_too_long",
    "too-many-roles": "too_many_roles",
    "role-no-permissions": "rbac_role_missing_permissions",
    "action-duplicate": "rbac_action_duplicate",
    # Stytch publishes no error type for an empty, blank or padded role_id; a policy
    # holding one is refused as a malformed argument rather than stored.
    "role-id-invalid": "invalid_argument",
}

MESSAGES = {
    "unauthorized_credentials": "Unauthorized credentials.",
    "organization_not_found": "Organization could not be found.",
    "enterprise_endpoint": "The organization RBAC policy feature is not enabled for this "
    "project. Please contact Stytch support to request access.",
    "route_not_found": "The requested route does not exist.",
}

SEARCH_WINDOW = 60.0  # seconds: Stytch counts organization searches per minute
ORG_POLICY_PREFIX = "/v1/b2b/rbac/organizations/"
ORGANIZATION_PREFIX = "/v1/b2b/organizations/"
SSO_PREFIX = "/v1/b2b/sso/"
SCIM_PREFIX = "/v1/b2b/scim/"
MEMBER_FILTERS = ("member_roles", "member_ids")  # the member search filters served


class Api:
    def __init__(
        self,
        store: Store,
        project_id: str,
        secret: str,
        limits: Limits,
        disabled_orgs: frozenset[str] = frozenset(),
        search_per_minute: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self.store = store
        self.limits = limits
        self.max_body_bytes = max_body_bytes
        self.disabled_orgs = disabled_orgs
        # Stytch limits organization search to 100 requests a minute: the starts of the
        # last `search_per_minute` searches (None: no limit).
        self._searches: deque[float] | None = (
            None if search_per_minute is None else deque(maxlen=search_per_minute)
        )
        self._clock = clock
        token = base64.b64encode(f"{project_id}:{secret}".encode()).decode()
        self._authorization = f"Basic {token}".encode()
        self._request_prefix = (
            "request-id-live-" if project_id.startswith("project-live-") else "request-id-test-"
        )
        self._index: tuple[object, ProjectIndex] | None = None

    # Helpers -------------------------------------------------------------------------

    def request_id(self) -> str:
        return self._request_prefix + str(uuid.uuid4())

    def authorized(self, request: Request) -> bool:
        given = request.headers.get("authorization", "").encode()
        return hmac.compare_digest(given, self._authorization)

    def project_index(self) -> ProjectIndex:
        policy = self.store.project_policy()
        if self._index is None or self._index[0] is not policy:
            self._index = (policy, ProjectIndex.of(policy))
        return self._index[1]

    def is_disabled(self, org: Organization) -> bool:
        ids = {org.organization_id, org.organization_slug, org.organization_external_id}
        return org.org_policy_disabled or not self.disabled_orgs.isdisjoint(ids)

    # Endpoints -----------------------------------------------------------------------

    async def policy(self, request: Request) -> Response:
        rid = self.request_id()
        if not self.authorized(request):
            return error(401, "unauthorized_credentials", rid)
        body = self.store.project_policy().model_dump_json()
        return raw_json(f'{{"request_id":"{rid}","status_code":200,"policy":{body}}}')

    async def org_policy(self, request: Request) -> Response:
        rid = self.request_id()
        if not self.authorized(request):
            return error(401, "unauthorized_credentials", rid)
        org = self.store.find(path_id(request, ORG_POLICY_PREFIX))
        if org is None:
            return error(404, "organization_not_found", rid)
        if self.is_disabled(org):
            return error(401, "enterprise_endpoint", rid)
        stored = org.org_policy
        if request.method == "PUT":
            policy_or_error = await self.parse_put(request, rid)
            if isinstance(policy_or_error, Response):
                return policy_or_error
            stored = self.store.set_org_policy(org.organization_id, policy_or_error)
        return raw_json(f'{{"request_id":"{rid}","status_code":200,"org_policy":{stored}}}')

    async def parse_put(self, request: Request, rid: str) -> OrgPolicy | Response:
        try:
            body = json.loads(await request.body())
        except (ValueError, RecursionError):
            return error(400, "bad_request", rid, "The request body is not valid JSON.")
        if not isinstance(body, dict):
            return error(400, "invalid_argument", rid, "The request body must be an object.")
        try:
            policy = OrgPolicy.model_validate(with_defaults(body.get("org_policy")))
        except (ValidationError, TypeError) as exc:
            return error(400, "invalid_argument", rid, f"org_policy: {_first_error(exc)}")
        for finding in check_org_policy(policy, self.project_index(), self.limits):
            if finding.code in ERROR_TYPES:
                return error(400, ERROR_TYPES[finding.code], rid, finding.message)
        return policy

    async def search(self, request: Request) -> Response:
        rid = self.request_id()
        if not self.authorized(request):
            return error(401, "unauthorized_credentials", rid)
        wait = self._search_wait()
        if wait is not None:
            return error(429, "too_many_requests", rid, headers={"retry-after": str(wait)})
        try:
            body = json.loads(await request.body() or b"{}")
        except (ValueError, RecursionError):
            return error(400, "bad_request", rid, "The request body is not valid JSON.")
        if not isinstance(body, dict):
            return error(400, "invalid_argument", rid, "The request body must be an object.")
        limit, cursor = body.get("limit", 100), body.get("cursor") or None
        if cursor is not None and not isinstance(cursor, str):
            return error(400, "invalid_argument", rid, "cursor must be a string.")
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 1000:
            return error(400, "invalid_argument", rid, "limit must be between 1 and 1000.")
        query = body.get("query")
        if query not in (None, {}) and (not isinstance(query, dict) or query.get("operands")):
            return error(
                400, "invalid_argument", rid, "The emulator supports searches without operands."
            )
        try:
            page, total, next_cursor = self.store.search(limit, cursor)
        except (ValueError, TypeError):
            return error(400, "invalid_argument", rid, "cursor is not one this server issued.")
        document = {
            "request_id": rid,
            "status_code": 200,
            "organizations": [organization_json(o) for o in page],
            "results_metadata": {"total": total, "next_cursor": next_cursor},
        }
        return raw_json(json.dumps(document))

    def _search_wait(self) -> int | None:
        """Seconds until one more search may start; None: it may start now (counted)."""
        searches, now = self._searches, self._clock()
        if searches is None:
            return None
        if len(searches) == searches.maxlen and now - searches[0] < SEARCH_WINDOW:
            return max(1, math.ceil(searches[0] + SEARCH_WINDOW - now))
        searches.append(now)
        return None

    async def organization(self, request: Request) -> Response:
        rid = self.request_id()
        if not self.authorized(request):
            return error(401, "unauthorized_credentials", rid)
        org = self.store.find(path_id(request, ORGANIZATION_PREFIX))
        if org is None:
            return error(404, "organization_not_found", rid)
        organization = organization_json(org, self.store.rules(org.organization_id))
        document = {"request_id": rid, "status_code": 200, "organization": organization}
        return raw_json(json.dumps(document))

    async def search_members(self, request: Request) -> Response:
        """Member search in some organizations, by the filters MEMBER_FILTERS, paged."""
        rid = self.request_id()
        if not self.authorized(request):
            return error(401, "unauthorized_credentials", rid)
        try:
            body = json.loads(await request.body() or b"{}")
        except (ValueError, RecursionError):
            return error(400, "bad_request", rid, "The request body is not valid JSON.")
        if not isinstance(body, dict):
            return error(400, "invalid_argument", rid, "The request body must be an object.")
        ids = body.get("organization_ids")
        if not _strings(ids) or not ids:
            return error(400, "invalid_argument", rid, "organization_ids must list at least one.")
        limit, cursor = body.get("limit", 100), body.get("cursor") or None
        if cursor is not None and not isinstance(cursor, str):
            return error(400, "invalid_argument", rid, "cursor must be a string.")
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 1000:
            return error(400, "invalid_argument", rid, "limit must be between 1 and 1000.")
        filters = _member_filters(body.get("query"))
        if isinstance(filters, str):
            return error(400, "invalid_argument", rid, filters)
        orgs = {o.organization_id: o for o in map(self.store.find, ids) if o is not None}
        try:
            page, total, next_cursor = self.store.search_members(
                sorted(orgs),
                filters.get("member_roles"),
                filters.get("member_ids"),
                limit,
                cursor,
            )
        except (ValueError, TypeError):
            return error(400, "invalid_argument", rid, "cursor is not one this server issued.")
        held = {m.organization_id for m in page}
        document = {
            "request_id": rid,
            "status_code": 200,
            "members": [member_json(m) for m in page],
            "results_metadata": {"total": total, "next_cursor": next_cursor},
            "organizations": {
                oid: organization_json(orgs[oid], self.store.rules(oid)) for oid in sorted(held)
            },
        }
        return raw_json(json.dumps(document))

    async def update_member(self, request: Request) -> Response:
        """Update Member, of which only `roles` (the roles assigned directly) is served."""
        rid = self.request_id()
        if not self.authorized(request):
            return error(401, "unauthorized_credentials", rid)
        org_name, _, member_id = path_id(request, ORGANIZATION_PREFIX).rpartition("/members/")
        org = self.store.find(org_name)
        if org is None:
            return error(404, "organization_not_found", rid)
        try:
            body = json.loads(await request.body() or b"{}")
        except (ValueError, RecursionError):
            return error(400, "bad_request", rid, "The request body is not valid JSON.")
        roles = body.get("roles") if isinstance(body, dict) else None
        if not _strings(roles):
            return error(
                400, "invalid_argument", rid, "The emulator updates a member's roles only."
            )
        known = {r.role_id for r in self.store.project_policy().roles}
        known |= {r.role_id for r in OrgPolicy.model_validate_json(org.org_policy).roles}
        unknown = sorted(set(roles) - known)
        if unknown:
            return error(400, "invalid_argument", rid, f"Role {unknown[0]!r} does not exist.")
        member = self.store.set_member_roles(org.organization_id, member_id, list(roles))
        if member is None:
            return error(404, "member_not_found", rid, "Member could not be found.")
        document = {
            "request_id": rid,
            "status_code": 200,
            "member_id": member.member_id,
            "member": member_json(member),
            "organization": organization_json(org, self.store.rules(org.organization_id)),
        }
        return raw_json(json.dumps(document))

    async def sso_connections(self, request: Request) -> Response:
        """Get SSO Connections: the organization's SAML connections."""
        rid = self.request_id()
        if not self.authorized(request):
            return error(401, "unauthorized_credentials", rid)
        org = self.store.find(path_id(request, SSO_PREFIX))
        if org is None:
            return error(404, "organization_not_found", rid)
        saml = self.store.rules(org.organization_id).saml_connections
        document = {
            "request_id": rid,
            "status_code": 200,
            "saml_connections": [
                saml_json(org.organization_id, c.model_dump(mode="json")) for c in saml
            ],
            "oidc_connections": [],
            "external_connections": [],
        }
        return raw_json(json.dumps(document))

    async def scim_connection(self, request: Request) -> Response:
        """Get SCIM Connection: the organization's, or null."""
        rid = self.request_id()
        if not self.authorized(request):
            return error(401, "unauthorized_credentials", rid)
        org_name = path_id(request, SCIM_PREFIX).removesuffix("/connection")
        org = self.store.find(org_name)
        if org is None:
            return error(404, "organization_not_found", rid)
        scim = self.store.rules(org.organization_id).scim_connection
        connection = None
        if scim is not None:
            connection = {
                "organization_id": org.organization_id,
                "status": "active",
                "identity_provider": "generic",
                "base_url": f"https://test.stytch.com/v1/b2b/scim/{scim.connection_id}",
                "bearer_token_last_four": "",
                "next_bearer_token_last_four": "",
                **scim.model_dump(mode="json"),
            }
        document = {"request_id": rid, "status_code": 200, "connection": connection}
        return raw_json(json.dumps(document))

    async def state(self, request: Request) -> Response:
        """Admin endpoint (not Stytch's): the whole state, in the seed format."""
        if not self.authorized(request):
            return error(401, "unauthorized_credentials", self.request_id())
        return raw_json(self.store.dump().model_dump_json(indent=2))

    async def not_found(self, request: Request) -> Response:
        return error(404, "route_not_found", self.request_id())

    def too_large(self) -> Response:
        """The answer to a request body past `max_body_bytes` (Stytch publishes no error
        type for it: this one is the emulator's)."""
        message = f"The request body is larger than {self.max_body_bytes} bytes."
        return error(413, "request_too_large", self.request_id(), message)


def create_app(api: Api) -> ASGIApp:
    """The API, its request bodies bounded by `api.max_body_bytes`."""
    routes = [
        Route("/v1/b2b/rbac/policy", api.policy, methods=["GET"]),
        Route(ORG_POLICY_PREFIX + "{id:path}", api.org_policy, methods=["GET", "PUT"]),
        Route("/v1/b2b/organizations/search", api.search, methods=["POST"]),
        Route("/v1/b2b/organizations/members/search", api.search_members, methods=["POST"]),
        Route(
            ORGANIZATION_PREFIX + "{id:path}/members/{member}", api.update_member, methods=["PUT"]
        ),
        Route(ORGANIZATION_PREFIX + "{id:path}", api.organization, methods=["GET"]),
        Route(SSO_PREFIX + "{id:path}", api.sso_connections, methods=["GET"]),
        Route(SCIM_PREFIX + "{id:path}/connection", api.scim_connection, methods=["GET"]),
        Route("/_emulator/state", api.state, methods=["GET"]),
        Route("/{rest:path}", api.not_found, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
    ]
    return BodyLimit(Starlette(routes=routes), api.max_body_bytes, api.too_large)


def raw_json(text: str, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(text, status_code=status, media_type="application/json", headers=headers)


def error(
    status: int,
    error_type: str,
    request_id: str,
    message: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """Stytch's error body."""
    body = {
        "status_code": status,
        "request_id": request_id,
        "error_type": error_type,
        "error_message": message or MESSAGES.get(error_type, error_type),
        "error_url": f"https://stytch.com/docs/api/errors/{status}#{error_type}",
    }
    return raw_json(json.dumps(body), status, headers)


def path_id(request: Request, prefix: str) -> str:
    """The path parameter after `prefix`, decoded from the raw path (`%2F` stays in it)."""
    raw = request.scope.get("raw_path") or request.url.path.encode()
    return unquote(raw.decode("latin-1")[len(prefix) :])


def with_defaults(org_policy: Any) -> Any:
    """Missing lists are empty and a missing description is "", as Stytch reads them."""
    if org_policy is None:
        return {"roles": []}
    if not isinstance(org_policy, dict):
        return org_policy
    roles = org_policy.get("roles")
    if not isinstance(roles, list):
        return {**org_policy, "roles": [] if roles is None else roles}
    return {**org_policy, "roles": [_role_defaults(r) for r in roles]}


def _role_defaults(role: Any) -> Any:
    if not isinstance(role, dict):
        return role
    permissions = role.get("permissions")
    if permissions is None:
        permissions = []
    elif isinstance(permissions, list):
        permissions = [
            {**p, "actions": [] if p.get("actions") is None else p["actions"]}
            if isinstance(p, dict)
            else p
            for p in permissions
        ]
    return {"description": "", **role, "permissions": permissions}


def _first_error(exc: ValidationError | TypeError) -> str:
    if isinstance(exc, TypeError):
        return str(exc)
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "org_policy"
    return f"{where}: {err['msg']}"


def _strings(value: Any) -> TypeGuard[list[str]]:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _member_filters(query: Any) -> dict[str, set[str]] | str:
    """The member search filters of `query`, by name; or what is wrong with it."""
    if query in (None, {}):
        return {}
    if not isinstance(query, dict) or query.get("operator", "AND") != "AND":
        return "query must be an object whose operator is AND."
    operands = query.get("operands") or []
    if not isinstance(operands, list):
        return "query.operands must be a list."
    filters: dict[str, set[str]] = {}
    for operand in operands:
        name = operand.get("filter_name") if isinstance(operand, dict) else None
        value = operand.get("filter_value") if isinstance(operand, dict) else None
        if name not in MEMBER_FILTERS:
            return f"The emulator serves the member search filters {', '.join(MEMBER_FILTERS)}."
        if not _strings(value):
            return f"{name}: filter_value must be a list of strings."
        filters[name] = filters.get(name, set(value)) & set(value)
    return filters


def member_json(member: SeedMember) -> dict[str, Any]:
    """A Member object as Stytch returns it, with Stytch's defaults for what the emulator
    does not keep."""
    return {
        "organization_id": member.organization_id,
        "member_id": member.member_id,
        "email_address": member.email_address,
        "status": member.status,
        "name": member.name,
        "sso_registrations": [],
        "is_breakglass": False,
        "member_password_id": "",
        "oauth_registrations": [],
        "email_address_verified": True,
        "mfa_phone_number_verified": False,
        "is_admin": any(r.role_id == "stytch_admin" for r in member.roles),
        "totp_registration_id": "",
        "retired_email_addresses": [],
        "is_locked": False,
        "mfa_enrolled": False,
        "mfa_phone_number": "",
        "default_mfa_method": "",
        "roles": [r.model_dump(mode="json") for r in member.roles],
        "trusted_metadata": {},
        "untrusted_metadata": {},
    }


def saml_json(organization_id: str, connection: dict[str, Any]) -> dict[str, Any]:
    """A SAML connection object, its rules as seeded, Stytch's defaults otherwise."""
    return {
        "organization_id": organization_id,
        "status": "active",
        "idp_entity_id": "",
        "idp_sso_url": "",
        "acs_url": "",
        "audience_uri": "",
        "signing_certificates": [],
        "verification_certificates": [],
        "encryption_private_keys": [],
        "alternative_audience_uri": "",
        "identity_provider": "generic",
        "nameid_format": "",
        "alternative_acs_url": "",
        "idp_initiated_auth_disabled": False,
        "allow_gateway_callback": False,
        **connection,
    }


def organization_json(org: Organization, rules: OrgRules | None = None) -> dict[str, Any]:
    """An Organization object as Stytch returns it, with Stytch's defaults for settings."""
    roles = json.loads(org.org_policy)["roles"]
    rules = rules or OrgRules()
    email_rules = rules.rbac_email_implicit_role_assignments
    return {
        "organization_id": org.organization_id,
        "organization_name": org.organization_name,
        "organization_logo_url": "",
        "organization_slug": org.organization_slug,
        "organization_external_id": org.organization_external_id,
        "trusted_metadata": {},
        "sso_default_connection_id": None,
        "sso_jit_provisioning": "ALL_ALLOWED",
        "sso_jit_provisioning_allowed_connections": [],
        "sso_active_connections": [],
        "scim_active_connection": None,
        "email_allowed_domains": [],
        "email_jit_provisioning": "NOT_ALLOWED",
        "email_invites": "ALL_ALLOWED",
        "auth_methods": "ALL_ALLOWED",
        "allowed_auth_methods": [],
        "mfa_policy": "OPTIONAL",
        "rbac_email_implicit_role_assignments": [r.model_dump() for r in email_rules],
        "mfa_methods": "ALL_ALLOWED",
        "allowed_mfa_methods": [],
        "oauth_tenant_jit_provisioning": "NOT_ALLOWED",
        "allowed_oauth_tenants": {},
        "claimed_email_domains": [],
        "first_party_connected_apps_allowed_type": "ALL_ALLOWED",
        "allowed_first_party_connected_apps": [],
        "third_party_connected_apps_allowed_type": "ALL_ALLOWED",
        "allowed_third_party_connected_apps": [],
        "custom_roles": roles,
        "created_at": org.created_at,
        "updated_at": org.updated_at,
    }

"""The ZenML Pro emulator's HTTP API: the organization-role endpoints of
zenml-pro-api.md, with FastAPI's error bodies, bearer tokens that expire, and the same
body limit and fault injection as the Stytch emulator.

Every path is served at the root (SaaS) and below `/api/v1` (self-hosted).
"""

from __future__ import annotations

import hmac
import json
import secrets
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any, TypeVar
from urllib.parse import parse_qs

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp

from policysync.emulator import MAX_BODY_BYTES
from policysync.emulator.bodies import BodyLimit
from policysync.emulator.faults import FaultInjector, Faults
from policysync.emulator.zenml_store import Duplicate, Level, Role, ZenmlStore

M = TypeVar("M", bound=BaseModel)

DEFAULT_API_KEY = "ZENPROKEY_emulator-test-key-not-a-real-key"
# The user the API key belongs to (assigned_to_current_user answers for this one).
CALLER_USER_ID = "00000000-0000-4000-8000-00000000c0de"
PREFIX = "/api/v1"  # self-hosted servers serve the API below it
LEVELS = ("organization", "workspace", "project")


# ZenML Pro guesses ------------------------------------------------------------------
# Every fact of the wire that no public source shows (zenml-pro-api.md's [G]) lives in
# this block, and nowhere else in the emulator; README's "ZenML Pro guesses" lists them:
#   1. the body of POST /roles: {name, description, organization_id, level, permissions}
#      (RoleCreate), answered 200 with the role;
#   2. the body of PATCH /roles/{id}: any of {name, description, permissions}, only the
#      fields that change; other fields are ignored (RoleUpdate);
#   3. a role's permissions: [{"resource": ..., "action": ...}], carried by GET /roles/{id},
#      POST and PATCH answers, not by the list (PERMISSIONS_IN_LIST);
#   4. DELETE /roles/{id} answers 200 `null` (and drops the role's assignments);
#   5. 404 for an unknown id, 409 for a duplicate (level, name) in an organization, and
#      the detail of 401/403/404/409 as ZenML's ["ExceptionClass", "message"] list;
#   6. the `name` filter matches the whole name; `workspace_scope`/`project_scope` keep
#      roles with an assignment in that workspace/project; `user_id` together with
#      `assigned_to_current_user=true` is answered 422 with a string detail;
#   7. any resource/action pair is accepted (the server's vocabulary check is not public).


class Permission(BaseModel):
    resource: str = Field(min_length=1)
    action: str = Field(min_length=1)


class RoleCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1)
    description: str = ""
    organization_id: uuid.UUID
    level: Level
    permissions: list[Permission] = []


class RoleUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str | None = Field(default=None, min_length=1)
    description: str | None = None
    permissions: list[Permission] | None = None


PERMISSIONS_IN_LIST = False
CREATED_STATUS = 200
DELETED_BODY = "null"
NOT_FOUND, CONFLICT, FORBIDDEN, UNAUTHORIZED = 404, 409, 403, 401


def detail(exception: str, message: str) -> list[str]:
    """The `detail` of a 401/403/404/409 answer."""
    return [exception, message]


def name_matches(role: Role, name: str) -> bool:
    return role.name == name


def scoped(assignments: Iterable[dict[str, str | None]], key: str, value: str) -> bool:
    return any(a[key] == value for a in assignments)


# ------------------------------------------------------------------------------------


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status, headers, media_type="application/json")


def unprocessable(errors: list[dict[str, Any]]) -> Response:
    """FastAPI's 422: `{"detail": [{"type", "loc", "msg", "input", ...}, ...]}`."""
    return json_response({"detail": errors}, 422)


def field_error(where: str, name: str, kind: str, msg: str, value: Any) -> dict[str, Any]:
    return {"type": kind, "loc": [where, name], "msg": msg, "input": value}


def body_errors(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {"type": e["type"], "loc": ["body", *e["loc"]], "msg": e["msg"], "input": e["input"]}
        for e in exc.errors(include_url=False)
    ]


def fault_body(status: int, error_type: str, message: str) -> bytes:
    """What an injected fault answers: a FastAPI body."""
    return json.dumps({"detail": message}).encode()


class Query:
    """A request's query parameters, checked as FastAPI checks them; errors collected."""

    def __init__(self, request: Request) -> None:
        self.params = request.query_params
        self.errors: list[dict[str, Any]] = []

    def text(self, name: str) -> str | None:
        return self.params.get(name)

    def uuid(self, name: str) -> str | None:
        value = self.params.get(name)
        return None if value is None else self._uuid("query", name, value)

    def _uuid(self, where: str, name: str, value: str) -> str | None:
        try:
            return str(uuid.UUID(value))
        except ValueError:
            msg = "Input should be a valid UUID"
            self.errors.append(field_error(where, name, "uuid_parsing", msg, value))
            return None

    def integer(self, name: str, default: int, low: int, high: int | None = None) -> int:
        value = self.params.get(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            msg = "Input should be a valid integer, unable to parse string as an integer"
            self.errors.append(field_error("query", name, "int_parsing", msg, value))
            return default
        if number < low:
            msg = f"Input should be greater than or equal to {low}"
            self.errors.append(field_error("query", name, "greater_than_equal", msg, value))
        elif high is not None and number > high:
            msg = f"Input should be less than or equal to {high}"
            self.errors.append(field_error("query", name, "less_than_equal", msg, value))
        return number

    def boolean(self, name: str) -> bool | None:
        value = self.params.get(name)
        if value is None:
            return None
        lowered = value.lower()
        if lowered in ("true", "1", "yes", "on", "t", "y"):
            return True
        if lowered in ("false", "0", "no", "off", "f", "n"):
            return False
        msg = "Input should be a valid boolean, unable to interpret input"
        self.errors.append(field_error("query", name, "bool_parsing", msg, value))
        return None

    def choice(self, name: str, choices: tuple[str, ...], default: str | None) -> str | None:
        value = self.params.get(name, default)
        if value is not None and value not in choices:
            msg = "Input should be " + " or ".join(f"'{c}'" for c in choices)
            self.errors.append(field_error("query", name, "enum", msg, value))
        return value


class ZenmlApi:
    def __init__(
        self,
        store: ZenmlStore,
        api_key: str,
        token_ttl: int = 3600,
        clock: Callable[[], float] = time.monotonic,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self.store = store
        self._key = api_key.encode()
        self.token_ttl = token_ttl
        self._clock = clock
        self.max_body_bytes = max_body_bytes
        self._tokens: dict[str, float] = {}  # token -> when it expires (clock)

    # Authentication ------------------------------------------------------------------

    def _key_matches(self, given: str) -> bool:
        return hmac.compare_digest(given.encode(), self._key)

    def unauthorized(self, request: Request) -> Response | None:
        """None when the request carries a live token (or the key itself), else a 401."""
        scheme, _, credential = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not credential:
            return json_response({"detail": "Not authenticated"}, UNAUTHORIZED, _CHALLENGE)
        if self._key_matches(credential):  # the raw key as bearer: accepted [V]
            return None
        expires = self._tokens.get(credential)
        if expires is None:
            body = {"detail": detail("AuthorizationException", "Invalid authentication token.")}
            return json_response(body, UNAUTHORIZED, _CHALLENGE)
        if self._clock() >= expires:
            del self._tokens[credential]
            body = {"detail": detail("AuthorizationException", "The token has expired.")}
            return json_response(body, UNAUTHORIZED, _CHALLENGE)
        return None

    async def login(self, request: Request) -> Response:
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        password = form.get("password", [None])[0]
        if password is None:
            return unprocessable(
                [field_error("body", "password", "missing", "Field required", None)]
            )
        if not self._key_matches(password):
            body = {"detail": detail("AuthorizationException", "Invalid API key.")}
            return json_response(body, UNAUTHORIZED)
        now = self._clock()
        self._tokens = {t: e for t, e in self._tokens.items() if e > now}  # forget dead ones
        token = secrets.token_urlsafe(32)
        self._tokens[token] = now + self.token_ttl
        return json_response(
            {
                "access_token": token,
                "token_type": "bearer",
                "expires_in": self.token_ttl,
                "device_id": None,
                "device_metadata": None,
            }
        )

    # Organizations -------------------------------------------------------------------

    async def organizations(self, request: Request) -> Response:
        if (refused := self.unauthorized(request)) is not None:
            return refused
        query = Query(request)
        offset = query.integer("offset", 0, 0)
        limit = query.integer("limit", 100, 0, 100)
        if query.errors:
            return unprocessable(query.errors)
        return json_response(self.store.organizations()[offset : offset + limit])

    async def organization(self, request: Request) -> Response:
        if (refused := self.unauthorized(request)) is not None:
            return refused
        org = self.store.organization(request.path_params["id"])
        if org is None:
            return self.not_found("organization", request.path_params["id"])
        return json_response(org)

    # Roles ---------------------------------------------------------------------------

    async def roles(self, request: Request) -> Response:
        if (refused := self.unauthorized(request)) is not None:
            return refused
        query = Query(request)
        oid = query._uuid("path", "organization_id", request.path_params["id"])
        name, resource, action = query.text("name"), query.text("resource"), query.text("action")
        user_id, team_id = query.uuid("user_id"), query.uuid("team_id")
        workspace, project = query.uuid("workspace_scope"), query.uuid("project_scope")
        system_managed = query.boolean("system_managed")
        mine = query.boolean("assigned_to_current_user")
        kind = query.choice("type", ("normal",), "normal")
        level = query.choice("level", LEVELS, None)
        offset = query.integer("offset", 0, 0)
        limit = query.integer("limit", 100, 0, 100)
        if query.errors:
            return unprocessable(query.errors)
        if user_id is not None and mine:
            return json_response(
                {"detail": "user_id cannot be combined with assigned_to_current_user"}, 422
            )
        if oid is None or self.store.organization(oid) is None:
            return self.not_found("organization", request.path_params["id"])

        def keep(role: Role) -> bool:
            assignments = self.store.assignments(role.id)
            pairs = {(p["resource"], p["action"]) for p in role.permissions}
            return (
                (name is None or name_matches(role, name))
                and (level is None or role.level == level)
                and (system_managed is None or role.system_managed == system_managed)
                and role.type == kind
                and (resource is None or any(r == resource for r, _ in pairs))
                and (action is None or any(a == action for _, a in pairs))
                and (user_id is None or scoped(assignments, "user", user_id))
                and (not mine or scoped(assignments, "user", CALLER_USER_ID))
                and (team_id is None or scoped(assignments, "team", team_id))
                and (workspace is None or scoped(assignments, "workspace_id", workspace))
                and (project is None or scoped(assignments, "project_id", project))
            )

        found = [r for r in self.store.roles(oid) if keep(r)][offset : offset + limit]
        return json_response([role_json(r, PERMISSIONS_IN_LIST) for r in found])

    async def create_role(self, request: Request) -> Response:
        if (refused := self.unauthorized(request)) is not None:
            return refused
        new = await self.parsed(request, RoleCreate)
        if isinstance(new, Response):
            return new
        oid = str(new.organization_id)
        if self.store.organization(oid) is None:
            return self.not_found("organization", oid)
        permissions = [p.model_dump() for p in new.permissions]
        try:
            role = self.store.create_role(oid, new.name, new.description, new.level, permissions)
        except Duplicate as exc:
            return self.conflict(str(exc))
        return json_response(role_json(role, True), CREATED_STATUS)

    async def role(self, request: Request) -> Response:
        """GET, PATCH or DELETE one role."""
        if (refused := self.unauthorized(request)) is not None:
            return refused
        role = self.find_role(request)
        if isinstance(role, Response):
            return role
        if request.method == "GET":
            return json_response(role_json(role, True))
        if role.system_managed:
            message = f"The system-managed role {role.name!r} cannot be changed or deleted."
            return json_response({"detail": detail("IllegalOperationError", message)}, FORBIDDEN)
        if request.method == "DELETE":
            self.store.delete_role(role.id)
            return Response(DELETED_BODY, 200, media_type="application/json")
        update = await self.parsed(request, RoleUpdate)
        if isinstance(update, Response):
            return update
        changes: dict[str, Any] = {k: getattr(update, k) for k in update.model_fields_set}
        changes = {k: v for k, v in changes.items() if v is not None}
        if "permissions" in changes:
            changes["permissions"] = [p.model_dump() for p in update.permissions or []]
        if not changes:
            return json_response(role_json(role, True))
        try:
            return json_response(role_json(self.store.update_role(role.id, changes), True))
        except Duplicate as exc:
            return self.conflict(str(exc))

    async def assignments(self, request: Request) -> Response:
        """GET lists who holds the role; POST assigns, DELETE revokes (query parameters)."""
        if (refused := self.unauthorized(request)) is not None:
            return refused
        role = self.find_role(request)
        if isinstance(role, Response):
            return role
        query = Query(request)
        given = {
            "workspace_id": query.uuid("workspace_id"),
            "project_id": query.uuid("project_id"),
        }
        holders = {k: query.uuid(f"{k}_id") for k in ("user", "team", "invitation")}
        if query.errors:
            return unprocessable(query.errors)
        if request.method == "GET":
            held = [
                {**a, "organization_id": role.organization_id}
                for a in self.store.assignments(role.id)
                if all(v is None or a[k] == v for k, v in given.items())
            ]
            return json_response(held)
        if sum(v is not None for v in holders.values()) != 1:
            return json_response(
                {"detail": "Give exactly one of user_id, team_id, invitation_id."}, 422
            )
        assignment = {**holders, **given}
        if request.method == "POST":
            self.store.assign(role.id, assignment)
        else:
            self.store.revoke(role.id, assignment)
        return Response("null", 200, media_type="application/json")

    # Helpers -------------------------------------------------------------------------

    def find_role(self, request: Request) -> Role | Response:
        query = Query(request)
        rid = query._uuid("path", "role_id", request.path_params["id"])
        if rid is None:
            return unprocessable(query.errors)
        role = self.store.role(rid)
        return self.not_found("role", rid) if role is None else role

    async def parsed(self, request: Request, model: type[M]) -> M | Response:
        """The request's JSON body as `model`, or FastAPI's 422."""
        try:
            body = json.loads(await request.body())
        except (ValueError, RecursionError):
            error = {"type": "json_invalid", "loc": ["body", 0], "msg": "JSON decode error"}
            return unprocessable([error | {"input": {}}])
        try:
            return model.model_validate(body)
        except ValidationError as exc:
            return unprocessable(body_errors(exc))

    def not_found(self, what: str, key: str) -> Response:
        body = {"detail": detail("KeyError", f"No {what} with id or name {key!r} found.")}
        return json_response(body, NOT_FOUND)

    def conflict(self, message: str) -> Response:
        return json_response({"detail": detail("EntityExistsError", message)}, CONFLICT)

    async def no_route(self, request: Request) -> Response:
        return json_response({"detail": "Not Found"}, 404)

    def too_large(self) -> Response:
        return json_response(
            {"detail": f"The request body is larger than {self.max_body_bytes} bytes."}, 413
        )


_CHALLENGE = {"www-authenticate": "Bearer"}


def role_json(role: Role, with_permissions: bool) -> dict[str, Any]:
    document: dict[str, Any] = {
        "id": role.id,
        "name": role.name,
        "description": role.description,
        "organization_id": role.organization_id,
        "level": role.level,
        "system_managed": role.system_managed,
        "type": role.type,
        "created": role.created,
        "updated": role.updated,
    }
    if with_permissions:
        document["permissions"] = role.permissions
    return document


def create_app(api: ZenmlApi) -> ASGIApp:
    routes: list[BaseRoute] = [
        Route("/auth/login", api.login, methods=["POST"]),
        Route("/organizations", api.organizations, methods=["GET"]),
        Route("/organizations/{id}", api.organization, methods=["GET"]),
        Route("/organizations/{id}/roles", api.roles, methods=["GET"]),
        Route("/roles", api.create_role, methods=["POST"]),
        Route("/roles/{id}", api.role, methods=["GET", "PATCH", "DELETE"]),
        Route("/roles/{id}/assignments", api.assignments, methods=["GET", "POST", "DELETE"]),
    ]
    fallback = Route(
        "/{rest:path}", api.no_route, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]
    )
    app = Starlette(routes=[Mount(PREFIX, routes=[*routes, fallback]), *routes, fallback])
    return BodyLimit(app, api.max_body_bytes, api.too_large)


def build(
    store: ZenmlStore,
    api_key: str,
    token_ttl: int = 3600,
    faults: Faults | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> ASGIApp:
    app = create_app(ZenmlApi(store, api_key, token_ttl, max_body_bytes=max_body_bytes))
    return FaultInjector(app, faults, fault_body) if faults is not None and faults.any else app

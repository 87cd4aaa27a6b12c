"""Settings: `policysync.toml`, or `[tool.policysync]` in `pyproject.toml`, in the
current folder or the nearest folder above it that has either (as ruff and pytest find
theirs); the paths in them are relative to the file.

Stytch does not publish its server-side limits; these defaults are policysync's own,
chosen generously, and every one can be changed in the configuration file.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from policysync.errors import ConfigError, UsageError


class Limits(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    max_file_bytes: int = Field(default=1_048_576, gt=0, description="largest policy file read")
    max_nesting_depth: int = Field(default=32, gt=0, description="deepest array/object nesting")
    max_organization_id_length: int = Field(default=128, gt=0)
    max_role_id_length: int = Field(default=128, gt=0)
    max_description_length: int = Field(default=1024, gt=0)
    max_action_length: int = Field(default=128, gt=0)
    max_roles_per_org: int = Field(default=100, gt=0)


class ApplySettings(BaseModel):
    """octoDNS's "too much change" guard: a plan updating more than `max_change_share`
    of the managed organizations needs `--force`, once there are at least
    `guard_min_organizations` of them (a tree of three may well change all three)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_change_share: float = Field(default=0.3, gt=0, le=1)
    guard_min_organizations: int = Field(default=10, ge=0)


def _grant(value: str) -> str:
    """`resource:action`, split at its last colon."""
    resource, _, action = value.rpartition(":")
    if not resource or not action:
        raise ValueError(f'"{value}" is not resource:action, e.g. "invoices:void"')
    return value


SensitiveGrant = Annotated[str, AfterValidator(_grant)]


# The most one request waits between its attempts, in all (backoff and Retry-After).
MAX_WAIT_SECONDS = 120.0


class RequestSettings(BaseModel):
    """How long one request to the provider may wait to be tried again, in all: the
    backoff after failures and the waits a 429's Retry-After asks for, summed. Past it
    (or when a Retry-After asks for more than is left) the organization fails."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_wait_seconds: float = Field(default=MAX_WAIT_SECONDS, ge=0, allow_inf_nan=False)


# The keys of [environments.NAME] each provider reads.
_ENVIRONMENT_KEYS = {
    "stytch": ("project_id_env", "secret_env", "base_url", "base_url_env"),
    "zenml": ("api_key_env", "api_url", "api_url_env"),
}
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
ENVIRONMENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")


def _variable(value: str | None) -> str | None:
    if value is not None and not _VARIABLE.fullmatch(value):
        raise ValueError(f'"{value}" is not the name of an environment variable')
    return value


Variable = Annotated[str | None, AfterValidator(_variable)]


class Environment(BaseModel):
    """`[environments.NAME]`: where one live system (a Stytch project, a ZenML Pro
    control plane) takes its credentials and endpoint from, for `--env NAME`. The
    values are never in the settings: they name the environment variables holding them.
    Each provider reads its own keys (its `endpoint_from_env`): Stytch `project_id_env`,
    `secret_env`, and `base_url` or `base_url_env`; ZenML Pro `api_key_env`, and
    `api_url` or `api_url_env`. An environment naming no credential variable reads the
    provider's standard ones, as in CI, where a GitHub environment holds each live
    system's secrets under those names."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    project_id_env: Variable = Field(default=None, description="Stytch: the project id's variable")
    secret_env: Variable = Field(default=None, description="Stytch: the secret's variable")
    base_url: str | None = Field(default=None, description="Stytch: the API's URL")
    base_url_env: Variable = Field(default=None, description="Stytch: the base URL's variable")
    api_key_env: Variable = Field(default=None, description="ZenML Pro: the API key's variable")
    api_url: str | None = Field(default=None, description="ZenML Pro: the API's URL")
    api_url_env: Variable = Field(default=None, description="ZenML Pro: the URL's variable")

    @model_validator(mode="after")
    def _one_url(self) -> Environment:
        for fixed, variable in (("base_url", "base_url_env"), ("api_url", "api_url_env")):
            if getattr(self, fixed) is not None and getattr(self, variable) is not None:
                raise ValueError(f"give {fixed} or {variable}, not both")
        if (self.project_id_env is None) != (self.secret_env is None):
            raise ValueError(
                "name both project_id_env and secret_env, or neither (the provider's "
                "standard variables)"
            )
        return self


class NamedEnvironment(NamedTuple):
    """An environment of the settings, and its name (`--env NAME`)."""

    name: str
    settings: Environment

    def setting(self, key: str) -> str:
        """How a message names one of its settings: `environments.live.base_url`."""
        return f"environments.{self.name}.{key}"


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: Literal["stytch", "zenml"] = Field(default="stytch", description="the live system")
    policies: str = Field(default="policies", description="relative to the settings file")
    journal: str = Field(default=".policysync/journal", description="relative, like policies")
    limits: Limits = Limits()
    apply: ApplySettings = ApplySettings()
    requests: RequestSettings = RequestSettings()
    house_rules: tuple[str, ...] = Field(
        default=(), description="globs of JSON Schemas, relative to the settings file"
    )
    _origin: tuple[str, int] = PrivateAttr(default=("policysync.toml", 1))

    @property
    def house_rules_origin(self) -> tuple[str, int]:
        """The settings file and the line of `house_rules`, where a bad glob is reported."""
        return self._origin

    sensitive: tuple[SensitiveGrant, ...] = Field(
        default=(),
        description='grants a plan flags as escalations, "resource:action" each',
    )

    environments: dict[str, Environment] = Field(
        default={}, description="[environments.NAME]: the live systems `--env NAME` names"
    )

    @model_validator(mode="after")
    def _environments(self) -> Settings:
        own = _ENVIRONMENT_KEYS[self.provider]
        other = [key for keys in _ENVIRONMENT_KEYS.values() for key in keys if key not in own]
        for name, environment in self.environments.items():
            if not ENVIRONMENT_NAME.fullmatch(name):
                raise ValueError(
                    f'[environments."{name}"]: an environment\'s name is letters, digits, '
                    "'_', '-' and '.' (up to 63, starting with a letter or digit)"
                )
            foreign = [key for key in other if getattr(environment, key) is not None]
            if foreign:
                raise ValueError(
                    f"[environments.{name}]: {', '.join(foreign)} "
                    f"{'is' if len(foreign) == 1 else 'are'} not for provider "
                    f'"{self.provider}"; its keys are ' + ", ".join(own)
                )
        return self

    def environment(self, name: str | None) -> NamedEnvironment | None:
        """The environment `--env NAME` names (None without --env); a UsageError naming
        the environments there are when the settings have no such one."""
        if name is None:
            return None
        found = self.environments.get(name)
        if found is not None:
            return NamedEnvironment(name, found)
        known = sorted(self.environments)
        if not known:
            raise UsageError(
                f"--env {name}: the settings define no environment: add "
                f'[environments.{name}] to the settings file (README, "Environments")'
            )
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise UsageError(
            f"--env {name}: no such environment in the settings{hint} "
            f"(the environments: {', '.join(known)})"
        )

    def sensitive_grants(self) -> list[tuple[str, str]]:
        """(resource_id, action) of each `sensitive` entry (split at its last colon)."""
        return [
            (resource, action)
            for resource, _, action in (s.rpartition(":") for s in self.sensitive)
        ]


CONFIG_FILE = "policysync.toml"


def find_config(start: Path) -> Path | None:
    """The settings file of a command run in `start`: `policysync.toml`, else a
    `pyproject.toml` with `[tool.policysync]`, in `start` or else the nearest folder
    above it holding either. The search ends at the top of a git repository (a folder
    holding `.git`): a file outside the repository never applies to it. The path found
    is named from `start` (`../../policysync.toml`), as messages show it."""
    try:
        here = start.resolve()
    except OSError:  # the current folder was deleted
        return None
    for hops, folder in enumerate((here, *here.parents)):
        found = _settings_file(folder)
        if found is not None:
            return Path(start, *[os.pardir] * hops, found.name)
        if (folder / ".git").exists():  # a work tree's `.git` is a file
            return None
    return None


def _settings_file(folder: Path) -> Path | None:
    candidate = folder / CONFIG_FILE
    if candidate.is_file():
        return candidate
    pyproject = folder / "pyproject.toml"
    if pyproject.is_file() and re.search(r"^\[tool\.policysync", _read(pyproject), re.M):
        return pyproject
    return None


def load_settings(path: Path | None) -> Settings:
    """Settings from `path` (defaults when None); a bad file raises ConfigError."""
    if path is None:
        return Settings()
    text = _read(path)
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}; fix the TOML syntax") from None
    if path.name == "pyproject.toml":
        data = data.get("tool", {}).get("policysync", {})
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"])
            line = _line_at(text, err["loc"], err["msg"])
            where = f"{path}:{line}" if line else str(path)
            message = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                problems.append(f"{where}: `{key}`: {unknown_key(err['loc'])}")
            elif key:
                problems.append(f"{where}: `{key}`: {message}")
            else:
                problems.append(f"{where}: {message}")
        raise ConfigError("\n".join(problems) + "\nfix the configuration file") from None
    # Relative paths in a settings file are relative to that file, wherever policysync runs.
    policies = os.path.normpath(path.parent / settings.policies)
    journal = os.path.normpath(path.parent / settings.journal)
    house_rules = tuple(os.path.normpath(path.parent / p) for p in settings.house_rules)
    located = settings.model_copy(
        update={"policies": policies, "journal": journal, "house_rules": house_rules}
    )
    located._origin = (str(path), _line_of(text, "house_rules") or 1)
    return located


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the configuration file: {exc}") from None


def unknown_key(loc: tuple[int | str, ...]) -> str:
    """Why the key at `loc` is refused: not a setting, and which one was meant."""
    known = sorted(_model_at(loc[:-1]).model_fields)
    section = ".".join(str(p) for p in loc[:-1])
    close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
    if close:
        return f"not a setting; did you mean `{'.'.join([*map(str, loc[:-1]), close[0]])}`?"
    where = f"of [{section}]" if section else "at the top level"
    return f"not a setting; the settings {where} are: {', '.join(known)}"


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel]:
    """The model of the table at `loc` (`("limits",)`: Limits)."""
    model: type[BaseModel] = Settings
    parts = list(loc)
    while parts:
        part = parts.pop(0)
        annotation = model.model_fields[str(part)].annotation
        if getattr(annotation, "__origin__", None) is dict:  # [environments.NAME]
            annotation = annotation.__args__[1]  # type: ignore[union-attr]
            parts.pop(0)
        assert isinstance(annotation, type), "extra keys are refused in tables only"
        assert issubclass(annotation, BaseModel)
        model = annotation
    return model


def _line_at(text: str, loc: tuple[int | str, ...], message: str) -> int | None:
    """The line of the setting at `loc`: the innermost key's (`sensitive`, not its
    item's index); in `[environments.NAME]`, the key's below that table (or the table's
    own). An error of the whole settings points at the table its message names."""
    keys = [str(p) for p in loc if isinstance(p, str)]
    if not keys:
        named = re.search(r"\[(environments\.[^\]]+)\]", message)
        return _line_of(text, named[1]) if named else None
    if keys[0] != "environments" or len(keys) < 2:
        return _line_of(text, keys[-1])
    table = _line_of(text, f"environments.{keys[1]}")
    if table is None or len(keys) < 3:
        return table
    below = _line_of("\n".join(text.splitlines()[table:]), keys[-1])
    return table + below if below else table


def _line_of(text: str, key: str) -> int | None:
    """The line where `key = ...` is set (or the table `[key]` opens), for pointing at a
    bad value or an unknown key."""
    pattern = rf"^[ \t]*(?:{re.escape(key)}\s*=|\[\s*(?:tool\.policysync\.)?{re.escape(key)}\s*\])"
    match = re.search(pattern, text, re.M)
    return text.count("\n", 0, match.start()) + 1 if match else None

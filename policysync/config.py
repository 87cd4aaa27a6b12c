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
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from policysync.errors import ConfigError


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
            # the line of the innermost key (`sensitive`, not its item's index)
            keys = [str(p) for p in err["loc"] if isinstance(p, str)]
            line = _line_of(text, keys[-1]) if keys else None
            where = f"{path}:{line}" if line else str(path)
            if err["type"] == "extra_forbidden":
                problems.append(f"{where}: `{key}`: {unknown_key(err['loc'])}")
            else:
                problems.append(f"{where}: `{key}`: {err['msg']}")
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
    for part in loc:
        annotation = model.model_fields[str(part)].annotation
        assert isinstance(annotation, type), "extra keys are refused in tables only"
        assert issubclass(annotation, BaseModel)
        model = annotation
    return model


def _line_of(text: str, key: str) -> int | None:
    """The line where `key = ...` is set (or the table `[key]` opens), for pointing at a
    bad value or an unknown key."""
    pattern = rf"^[ \t]*(?:{re.escape(key)}\s*=|\[\s*(?:tool\.policysync\.)?{re.escape(key)}\s*\])"
    match = re.search(pattern, text, re.M)
    return text.count("\n", 0, match.start()) + 1 if match else None

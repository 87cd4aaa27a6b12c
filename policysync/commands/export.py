"""`policysync export`, as a function: read live, then write the files, or commit them.

Without a branch, the files of the policies folder on disk are refreshed (each replaced
whole by `durable.replace`, and only when what it says changes: a file that says what
live says in another form is left as written, for `policysync fmt`). With `--branch NAME`, the
files are read from HEAD instead and the result is committed on the new branch NAME,
starting at HEAD; the current branch, the index and the work tree are left untouched
(`git switch NAME` shows the result).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from policysync import durable, git
from policysync.config import Settings
from policysync.errors import ORGANIZATION_NOT_FOUND, ProviderError, UsageError
from policysync.export import (
    PROJECT_SCHEMA,
    Existing,
    ExportedFile,
    ExportProblem,
    ExportResult,
    Known,
    Target,
    choose,
    existing,
    project_file,
    same_org_file,
    same_project_file,
    status,
    template_remainder,
)
from policysync.formats import file_format
from policysync.layout import (
    ORGS_DIR,
    PROJECT_FILE,
    TEMPLATES_DIR,
    is_org_file_name,
    is_org_file_path,
    is_template_file_path,
)
from policysync.models import Organization, OrgPolicy
from policysync.plan import OrgError
from policysync.providers.base import Provider
from policysync.selection import by_files
from policysync.templates import read_template
from policysync.workers import Progress, each


def _absent(error: OrgError, environment: str | None) -> bool:
    """Whether an organization's read says it does not exist in the environment --env
    names (one policy tree serves environments that need not hold every organization)."""
    return environment is not None and error.error_type == ORGANIZATION_NOT_FOUND


class Request(NamedTuple):
    orgs: Sequence[str] = ()
    all_orgs: bool = False
    branch: str | None = None
    parallelism: int = 16
    search_page_size: int = 1000
    environment: str | None = None  # --env: an organization it lacks is skipped, not a problem


async def export_live(
    settings: Settings,
    provider: Provider,
    request: Request,
    progress: Callable[[int], Progress] | None = None,
) -> ExportResult:
    """Export through `provider` (which the caller has entered); `progress(total)` once
    the organizations to read are known, then its callback after each."""
    root = Path(settings.policies)
    if request.branch is not None:  # refused before any request is made
        git.check_new_branch(root, request.branch)
    current = read_head(root, settings) if request.branch else read_disk(root)
    files = [existing(name[len(ORGS_DIR) + 1 :], data) for name, data in _org_items(current)]
    live_project = await provider.read_catalog()
    written = {file.organization_id for file in files}
    wanted = [_by_file(name, files) for name in request.orgs]
    known = None
    if request.all_orgs or set(wanted) - written:
        known = [_known(o) async for o in provider.list_orgs(request.search_page_size)]
    files_of = file_format(settings.provider)
    targets, problems = choose(files, wanted, request.all_orgs, known, files_of.org_schema)

    async def read(target: Target) -> tuple[Target, OrgPolicy | OrgError]:
        try:
            return target, await provider.read_org(target.organization_id)
        except ProviderError as exc:
            return target, OrgError.of(exc)

    tick = progress(len(targets)) if progress else None
    policies = await each(targets, read, request.parallelism, tick)
    templates = {
        t.name: t
        for t in (
            read_template(name.rsplit("/", 1)[-1], str(root / name), data, files_of.parse_template)
            for name, data in current.items()
            if is_template_file_path(name)
        )
    }
    notes: list[str] = []
    project = existing(PROJECT_FILE, current.get(PROJECT_FILE))
    had_project = PROJECT_FILE in current
    project_schema = project.schema if had_project else PROJECT_SCHEMA
    outputs: dict[str, bytes] = {}
    ids: dict[str, str | None] = {}
    same: dict[str, Callable[[bytes], bool]] = {}  # the file says it already, in any form
    if files_of.project_policy:
        outputs[PROJECT_FILE] = project_file(project_schema, live_project)
        ids[PROJECT_FILE] = None
        same[PROJECT_FILE] = same_project_file(live_project)
    for target, policy in sorted(policies, key=lambda item: item[0].name):
        path = f"{ORGS_DIR}/{target.name}"
        if isinstance(policy, OrgError) and _absent(policy, request.environment):
            notes.append(
                f"{root / path}: organization {target.organization_id} is not in environment "
                f"{request.environment}: skipped, its file left as it is"
            )
        elif isinstance(policy, OrgError):
            problems.append(_failed(str(root / path), target, policy))
        else:
            kept, rest, found = template_remainder(target, policy, templates)
            notes += found
            outputs[path] = files_of.org_file(kept, rest)
            ids[path] = target.organization_id
            same[path] = same_org_file(files_of.parse_policy, kept, rest)
    statuses = {path: status(current, path, data, same[path]) for path, data in outputs.items()}
    changed = {path: outputs[path] for path, state in statuses.items() if state != "unchanged"}
    commit = None
    if request.branch is None:
        write(root, changed)
    elif changed:
        message = commit_message(provider.project_id, statuses, files_of.exported)
        commit = git.commit_on_new_branch(root, request.branch, changed, message)
    return ExportResult(
        project_id=provider.project_id,
        files=tuple(
            ExportedFile(file=str(root / path), organization_id=ids[path], status=state)
            for path, state in sorted(statuses.items())
        ),
        problems=tuple(problems),
        branch=request.branch,
        commit=commit,
        notes=tuple(notes),
    )


def _by_file(name: str, files: Sequence[Existing]) -> str:
    """An `--org` name as an organization id: the id a file with that name (`acme` or
    `acme.json`) names, when no file names an organization `name`; else `name` itself."""
    managed = {file.organization_id: file.name for file in files if file.organization_id}
    chosen = by_files([name], managed).chosen
    return chosen[0] if chosen else name


def _known(organization: Organization) -> Known:
    return Known(
        organization.organization_id,
        organization.organization_slug,
        organization.organization_external_id,
        bool(organization.org_policy.roles),
    )


def _failed(file: str, target: Target, error: OrgError) -> ExportProblem:
    message = f"not exported: {error.error_type}: {error.message}"
    return ExportProblem(
        file=file, organization_id=target.organization_id, message=message, error=error
    )


def _org_items(current: dict[str, bytes | None]) -> list[tuple[str, bytes | None]]:
    return sorted((name, data) for name, data in current.items() if is_org_file_path(name))


def read_disk(root: Path) -> dict[str, bytes | None]:
    """`project.json`, the organization files of `orgs/` and the templates (paths
    relative to `root`)."""
    out: dict[str, bytes | None] = {}
    if (root / PROJECT_FILE).is_file():
        out[PROJECT_FILE] = _read(root / PROJECT_FILE)
    for folder in (ORGS_DIR, TEMPLATES_DIR):
        where = root / folder
        for path in sorted(where.iterdir()) if where.is_dir() else ():
            if is_org_file_name(path.name) and path.is_file():
                out[f"{folder}/{path.name}"] = _read(path)
    return out


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def read_head(root: Path, settings: Settings) -> dict[str, bytes | None]:
    """The same files, as they are at HEAD."""
    snapshot = git.files_at(root, "HEAD", settings.limits.max_file_bytes)
    out: dict[str, bytes | None] = {}
    for file in snapshot.files:
        if file.kind == "file" and (
            file.path == PROJECT_FILE
            or is_org_file_path(file.path)
            or is_template_file_path(file.path)
        ):
            out[file.path] = file.data
    return out


def write(root: Path, files: dict[str, bytes]) -> None:
    """Each file replaced whole (`durable.replace`), in the order of their names; a
    file that cannot be written is a UsageError naming it."""
    for path, data in sorted(files.items()):
        target = root / path
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            durable.replace(target, data)
        except OSError as exc:
            raise UsageError(
                f"{target}: cannot write it ({exc.strerror or exc}); the files named before it "
                "are written: fix the cause and export again"
            ) from None


def commit_message(project_id: str, statuses: Mapping[str, str], what: str, shown: int = 50) -> str:
    lines = [f"{state} {path}" for path, state in sorted(statuses.items()) if state != "unchanged"]
    more = [f"... and {len(lines) - shown} more"] if len(lines) > shown else []
    return "\n".join(
        [
            f"Export {what}",
            "",
            f"Written by `policysync export` from project {project_id}:",
            "",
            *lines[:shown],
            *more,
        ]
    )

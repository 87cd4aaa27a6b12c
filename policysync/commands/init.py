"""`policysync init`, as a function: a new policy repository written into a folder
(`scaffold.files`), and with `FromLive` the live state exported into it.

Nothing is written over a file that says something else. Each file init would write is
read first; any that exists with other bytes (with `FromLive`, also a `project.json` or
an organization file, which export would refresh) stops it before anything is written,
naming them all, unless `force`. A `.gitignore` that exists is added to, never replaced.
The export (`export_live`, as `policysync export [--all-orgs]` does it) comes before the
other files are written: a provider that cannot be read leaves the folder as it was.
"""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from policysync import durable, scaffold
from policysync.commands.export import Request, export_live
from policysync.config import Settings
from policysync.errors import UsageError
from policysync.export import ExportResult
from policysync.formats import file_format
from policysync.layout import ORGS_DIR, PROJECT_FILE, is_org_file_name
from policysync.models import OrgPolicy
from policysync.providers.base import Provider
from policysync.scaffold import InitFile, InitResult, InitStatus, Pins
from policysync.workers import Progress


class FromLive(NamedTuple):
    provider: Provider  # entered by the caller
    all_orgs: bool
    parallelism: int = 16
    progress: Callable[[int], Progress] | None = None


def settings_for(directory: Path, provider: str) -> Settings:
    """The settings of the repository init writes into `directory`, as `policysync.toml`
    there gives them."""
    return Settings.model_validate(
        {"provider": provider, "policies": str(directory / scaffold.POLICIES)}
    )


async def init(
    directory: Path,
    provider: str,
    pinned: Pins,
    force: bool,
    live: FromLive | None = None,
) -> InitResult:
    planned = scaffold.files(provider, pinned)
    decided = _live_decides(directory, provider) if live is not None else []
    for path in decided:
        planned.pop(path, None)
    current = {path: _current(directory / path) for path in planned}
    planned[scaffold.GITIGNORE] = scaffold.ignoring(current[scaffold.GITIGNORE])
    conflicts = [
        path
        for path, data in planned.items()
        if current[path] not in (None, data) and path != scaffold.GITIGNORE  # added to
    ]
    conflicts += [path for path in decided if (directory / path).exists()]
    if conflicts and not force:
        raise UsageError(_refusal(directory, sorted(conflicts)))
    export = None
    if live is not None:
        settings = settings_for(directory, provider)
        request = Request(all_orgs=live.all_orgs, parallelism=live.parallelism)
        export = await export_live(settings, live.provider, request, live.progress)
        for path, data in scaffold.starter_files(provider, _exported(export, provider)).items():
            planned[path], current[path] = data, _current(directory / path)
    written = []
    for path, data in planned.items():
        old = current[path]
        state: InitStatus = "unchanged" if old == data else "created" if old is None else "updated"
        if state != "unchanged":
            _write(directory / path, data)
        written.append(InitFile(str(directory / path), state))
    return InitResult(str(directory), provider, tuple(written), export, pinned.placeholders())


def _live_decides(directory: Path, provider: str) -> list[str]:
    """The files in `directory` that an export writes, or that follow from what it
    exports: the starter files, `project.json` (for a provider whose tree has one) and
    the organization files there are."""
    out = list(scaffold.starter_files(provider))
    if file_format(provider).project_policy:
        out.append(f"{scaffold.POLICIES}/{PROJECT_FILE}")
    orgs = directory / scaffold.POLICIES / ORGS_DIR
    for path in sorted(orgs.iterdir()) if orgs.is_dir() else ():
        if is_org_file_name(path.name):
            out.append(f"{scaffold.POLICIES}/{ORGS_DIR}/{path.name}")
    return list(dict.fromkeys(out))


def _exported(export: ExportResult, provider: str) -> list[OrgPolicy]:
    """The organizations' policies the export wrote (or found written), as it wrote them."""
    parse = file_format(provider).parse_policy
    return [
        parse(Path(file.file).read_bytes()).org_policy
        for file in export.files
        if file.organization_id is not None
    ]


def _refusal(directory: Path, conflicts: list[str]) -> str:
    listed = "".join(f"\n  {directory / path}" for path in conflicts)
    return (
        f"{directory}: init would write over these files:{listed}\n"
        "nothing was written: move them away, or run init with --force to replace them"
    )


def _current(path: Path) -> bytes | None:
    """The bytes of `path`; None when there is no file there."""
    if not path.exists() and not path.is_symlink():
        return None
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(
            f"{path}: cannot read it ({exc.strerror or exc}); nothing was written"
        ) from None


def _write(path: Path, data: bytes) -> None:
    try:
        mode = stat.S_IMODE(path.stat().st_mode) if path.is_file() else 0o666
        durable.make_folders(path.parent)
        durable.replace(path, data, mode)
    except OSError as exc:
        raise UsageError(
            f"{path}: cannot write it ({exc.strerror or exc}); the files before it are "
            "written: fix the cause and run init again"
        ) from None

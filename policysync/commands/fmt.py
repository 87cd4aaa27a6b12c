"""`policysync fmt`, as a function: the policy files rewritten in the one canonical form
`export` writes (`formatting.py`), or with `check` only listed.

The files are validated first, as `validate` checks them (the same PATHS, folders or
single files): a tree with errors is not formatted at all, since a file that does not
parse has no canonical form and a file that breaks a rule is better fixed than tidied.
Each organization file and template is formatted, and `project.json` (for a provider
whose tree has one); ZenML's `permissions.json`, which export never writes, is left as
written. A file is replaced (`durable.replace`, keeping its permissions) only when its bytes change;
through a symbolic link, the file it leads to is.
"""

from __future__ import annotations

import stat
from collections.abc import Iterator, Sequence
from pathlib import Path

from policysync import durable
from policysync.config import Settings
from policysync.errors import UsageError
from policysync.formats import FileFormat, file_format
from policysync.formatting import FormatResult, org_bytes, project_bytes, template_bytes
from policysync.layout import PROJECT_FILE, is_template_file, is_test_file, root_file
from policysync.loader import load_project, org_paths
from policysync.templates import template_paths
from policysync.validate import roots_of, validate


def run_fmt(settings: Settings, paths: Sequence[Path], check: bool) -> FormatResult:
    """Format the files `paths` name (the policies folder when empty); with `check`,
    write nothing."""
    report = validate(paths, settings, strict=False)
    if not report.valid:
        return FormatResult(report, (), (), check)
    files_of = file_format(settings.provider)
    files, changed = [], []
    for root, selected in roots_of(paths, settings).items():
        for path in _files(root, selected, settings.provider, files_of):
            data = _read(path)
            formatted = _formatted(path, root, data, settings, files_of)
            files.append(path)
            if formatted != data:
                changed.append(path)
                if not check:
                    _write(path, formatted)
    return FormatResult(report, tuple(files), tuple(changed), check)


def _files(root: Path, selected: list[Path], provider: str, files_of: FileFormat) -> Iterator[Path]:
    """The files of `root` to format: the selected ones, or all of them."""
    own = root / root_file(provider)
    if not selected:
        if files_of.project_policy:
            yield own
        yield from org_paths(root, [])  # what it skips, validate has reported
        yield from template_paths(root)
        return
    for path in dict.fromkeys(selected):
        if is_test_file(path, root):  # written by people: left as written
            continue
        if path.absolute() != own.absolute() or files_of.project_policy:
            yield path


def _formatted(
    path: Path, root: Path, data: bytes, settings: Settings, files_of: FileFormat
) -> bytes:
    limits = settings.limits
    if files_of.project_policy and path.absolute() == (root / PROJECT_FILE).absolute():
        project, _ = load_project(root, limits)
        if project is not None:
            return project_bytes(data, project.policy)
    elif is_template_file(path, root):
        formatted = template_bytes(files_of, data)
        if formatted is not None:
            return formatted
    else:
        document = files_of.read_policy(path, root.resolve(), limits)
        if document is not None:
            return org_bytes(files_of, path.name, data, document)
    raise UsageError(f"{path}: changed since it was validated: run `policysync fmt` again")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read it ({exc.strerror or exc})") from None


def _write(path: Path, data: bytes) -> None:
    target = path.resolve()  # a symbolic link stays one (validate kept it in the tree)
    try:
        durable.replace(target, data, stat.S_IMODE(target.stat().st_mode))
    except OSError as exc:
        raise UsageError(
            f"{path}: cannot write it ({exc.strerror or exc}); the files before it are "
            "formatted: fix the cause and run `policysync fmt` again"
        ) from None

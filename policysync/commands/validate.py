"""`policysync validate`, as a function; with `--changed-since REF`, which files a change
makes worth checking.

An organization file is checked against `project.json` and the limits of the settings
file, and against the other organization files for one rule only (two files naming the
same organization). So a changed organization file is checked with the files naming the
same organization (see `validate_root(related=True)`) and with every policy test file
(a test may name any organization; a changed test file is checked with the others),
while a change to `project.json` (ZenML's `permissions.json`), to a template, to the
settings file or to the published schemas (`<policies>/../schemas/`) can change the
verdict on any file, and everything is checked.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from policysync import git
from policysync.config import Settings
from policysync.errors import UsageError
from policysync.layout import (
    ORGS_DIR,
    PERMISSIONS_FILE,
    PROJECT_FILE,
    TEMPLATES_DIR,
    TESTS_DIR,
    is_org_file_name,
)
from policysync.report import ValidationReport
from policysync.validate import validate

SCHEMAS_DIR = "schemas"


class Selection(NamedTuple):
    everything: str | None  # why every file is checked (the file that changed), or None
    files: list[Path]  # otherwise: the changed organization files, as under `root`


def triggers(root: Path, config: Path | None, rules: Sequence[Path] = ()) -> list[Path]:
    """What, when changed, makes every file worth checking again (`rules`: the house
    rules' schema files)."""
    extra = [config] if config else []
    return [
        root / PROJECT_FILE,
        root / PERMISSIONS_FILE,
        root / TEMPLATES_DIR,
        root.parent / SCHEMAS_DIR,
        *extra,
        *rules,
    ]


def select(
    changed: Sequence[Path], root: Path, config: Path | None, rules: Sequence[Path] = ()
) -> Selection:
    """The files to check, given the changed ones (absolute, as git reported them)."""
    orgs, wide = (root / ORGS_DIR).resolve(), triggers(root, config, rules)
    tests = (root / TESTS_DIR).resolve()
    files, tested = [], False
    for path in changed:
        real = path.resolve()
        hit = next((t for t in wide if real.is_relative_to(t.resolve())), None)
        if hit is not None:
            return Selection(str(hit), [])
        if real.parent == orgs and is_org_file_name(real.name):
            files.append(root / ORGS_DIR / real.name)  # as the user names the folder
        tested = tested or (real.parent == tests and is_org_file_name(real.name))
    if files or tested:  # a test can name any organization: every test file is checked
        files += [p for p in (root / TESTS_DIR).glob("*.json") if is_org_file_name(p.name)]
    return Selection(None, sorted(set(files)))


def changed_selection(settings: Settings, ref: str, config: Path | None) -> Selection:
    """The selection for what changed since `ref` (staged, unstaged and untracked files
    included), under the policies folder, the schemas and the settings file."""
    root = Path(settings.policies)
    rules: list[Path] = []
    if settings.house_rules:  # imported here: jsonschema only when there are house rules
        from policysync.house import house_rule_files

        rules = house_rule_files(settings)[0]
    changed = git.changed_since(root, ref, [root, *triggers(root, config, rules)[1:]])
    return select(changed, root, config, rules)


class ValidateRun(NamedTuple):
    report: ValidationReport
    notes: list[str]  # what was checked, and why


def run_validate(
    settings: Settings,
    paths: Sequence[Path],
    strict: bool,
    changed_since: str | None = None,
    config: Path | None = None,
) -> ValidateRun:
    """The files `paths` (the policies folder when empty), or with `changed_since` the
    files a change since that commit makes worth checking."""
    if changed_since is None:
        return ValidateRun(validate(list(paths), settings, strict), [])
    if paths:
        raise UsageError("--changed-since chooses the files itself: give no PATH with it")
    selection = changed_selection(settings, changed_since, config)
    if selection.everything is not None:
        note = f"{selection.everything} changed since {changed_since}: checking every file"
    else:
        orgs = [f for f in selection.files if f.parent.name == ORGS_DIR]
        note = f"{len(orgs)} organization file(s) changed since {changed_since}"
        if len(orgs) < len(selection.files):
            note += ": checking them, and every policy test file"
    return ValidateRun(validate_changed(selection, settings, strict), [note])


def validate_changed(selection: Selection, settings: Settings, strict: bool) -> ValidationReport:
    if selection.everything is not None:
        return validate([], settings, strict)
    if not selection.files:
        return ValidationReport.build([], 0, 0, strict)
    return validate(selection.files, settings, strict, related=True)

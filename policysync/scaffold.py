"""What `policysync init` writes into a new policy repository, by path: the settings, the
policies folder's starter files (the provider's `FileFormat.starter`) with an empty
`orgs/`, the published schemas, a `.gitignore` that leaves the journal out, and four
workflows calling policysync's reusable ones.

The four callers come from the templates in `policysync/templates/`, and so do this
repository's own (`.github/workflows/policy-*.yml`, which call the reusable workflows
beside them with `./`): `python -m policysync.scaffold --write` (`make callers`) writes
those, and a test fails when they differ from what the templates give. What policysync's
own CI lints and runs is thus what `init` writes, but for the `uses:` line.

A written caller names policysync's workflow at a full commit SHA, the release's tag in a
comment: a tag can be moved, a commit cannot, and zizmor's unpinned-uses audit flags any
other reference. The package knows neither the commit of its release nor where its
repository lives, so without `--repository` and `--ref` the callers name
`OWNER/policysync` at a SHA of zeros: placeholders actionlint and zizmor accept and
GitHub refuses ("workflow was not found") until they are replaced, never a version
picked silently.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Literal, NamedTuple

from policysync import __version__, schemas
from policysync.errors import UsageError
from policysync.export import ExportResult
from policysync.formats import file_format
from policysync.layout import ORGS_DIR
from policysync.models import OrgPolicy

WORKFLOWS = ".github/workflows"
KINDS = ("pr", "drift", "apply", "rollback")  # policy-KIND.yml calls policysync-KIND.yml
POLICIES = "policies"
SCHEMAS = "schemas"
SETTINGS = "policysync.toml"
GITIGNORE = ".gitignore"
ORGS_KEEP = f"{POLICIES}/{ORGS_DIR}/.gitkeep"  # git keeps no empty folder
JOURNAL_IGNORE = ".policysync/"  # the journal and the run lock (`journal` setting's default)
PLACEHOLDER_REPOSITORY = "OWNER/policysync"
PLACEHOLDER_SHA = "0" * 40
OWN_PROVIDER = "stytch"  # the provider of this repository's own callers (its sample)
_REPOSITORY = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+")
_SHA = re.compile(r"[0-9a-f]{40}")

InitStatus = Literal["created", "updated", "unchanged"]


class Pins(NamedTuple):
    """Where the callers find policysync's reusable workflows, and at which commit."""

    repository: str = PLACEHOLDER_REPOSITORY
    sha: str = PLACEHOLDER_SHA
    version: str = __version__

    @property
    def tag(self) -> str:
        return f"v{self.version}"

    def uses(self, kind: str) -> str:
        return f"{self.repository}/{WORKFLOWS}/policysync-{kind}.yml@{self.sha} # {self.tag}"

    def placeholders(self) -> tuple[str, ...]:
        """The placeholders left in the callers, each with what replaces it."""
        out = []
        if self.repository == PLACEHOLDER_REPOSITORY:
            out.append(f"{PLACEHOLDER_REPOSITORY} (policysync's repository, --repository)")
        if self.sha == PLACEHOLDER_SHA:
            out.append(f"the SHA of zeros (the commit of policysync's tag {self.tag}, --ref)")
        return tuple(out)


def pins(repository: str | None, ref: str | None) -> Pins:
    """`Pins` from --repository and --ref (a placeholder for each not given)."""
    found = Pins()
    if repository is not None:
        if not _REPOSITORY.fullmatch(repository):
            raise UsageError(f"--repository {repository!r}: give it as OWNER/NAME")
        found = found._replace(repository=repository)
    if ref is not None:
        if not _SHA.fullmatch(ref.lower()):
            where = found.repository
            raise UsageError(
                f"--ref {ref!r}: give the full commit SHA (40 hex digits) of policysync's tag "
                f"{found.tag}: the last line `git ls-remote --tags https://github.com/{where} "
                f"{found.tag} '{found.tag}^{{}}'` prints. A tag can be moved, a commit cannot "
                "(zizmor's unpinned-uses audit flags any other reference)."
            )
        found = found._replace(sha=ref.lower())
    return found


class InitFile(NamedTuple):
    path: str  # as the user named the folder, joined with the file's path in it
    status: InitStatus


class InitResult(NamedTuple):
    directory: str
    provider: str
    files: tuple[InitFile, ...]  # in the order written
    export: ExportResult | None  # with --from-live
    placeholders: tuple[str, ...]  # `Pins.placeholders`


def _template(kind: str) -> str:
    return (resources.files("policysync") / "templates" / f"policy-{kind}.yml").read_text(
        encoding="utf-8"
    )


def caller(kind: str, uses: str, provider: str, origin: str) -> str:
    """The caller `policy-KIND.yml`: its template with its `uses:` value, its provider
    and `origin` (comment lines saying where the file comes from)."""
    text = _template(kind)
    for marker, value in (("@origin@", origin), ("@uses@", uses), ("@provider@", provider)):
        assert text.count(marker) == 1, f"policy-{kind}.yml: {marker}"
        text = text.replace(marker, value)
    return text


def _comment(text: str) -> str:
    """`text` as comment lines of at most 88 characters."""
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= 88:
            lines[-1] += f" {word}"
        else:
            lines.append(f"# {word}")
    return "\n".join(lines)


def scaffold_callers(provider: str, pinned: Pins) -> dict[str, bytes]:
    """The four callers `init` writes, by their path."""
    origin = (
        f"Written by `policysync init` (policysync {pinned.version}): `uses:` names policysync's "
        f"workflow at the full commit SHA of its release {pinned.tag} (a tag can be moved, a "
        "commit cannot); a later version is a change of that SHA on the four callers "
        '(policysync\'s README, "Using it in GitHub").'
    )
    left = pinned.placeholders()
    if left:
        origin += f" Replace the placeholder{'s' if len(left) > 1 else ''} " + " and ".join(left)
        origin += ": GitHub finds no workflow there."
    return {
        f"{WORKFLOWS}/policy-{kind}.yml": caller(
            kind, pinned.uses(kind), provider, _comment(origin)
        ).encode("utf-8")
        for kind in KINDS
    }


def own_callers() -> dict[str, str]:
    """This repository's callers, by file name: the same templates, calling the reusable
    workflows beside them."""
    origin = _comment(
        "In policysync itself it calls the workflow beside it (`./`); `policysync init` writes "
        "it into a policy repository calling OWNER/policysync at a full commit SHA. Written by "
        "`make callers` from policysync/templates/: edit the template, not this file."
    )
    return {
        f"policy-{kind}.yml": caller(
            kind, f"./{WORKFLOWS}/policysync-{kind}.yml", OWN_PROVIDER, origin
        )
        for kind in KINDS
    }


def settings_file(provider: str) -> bytes:
    return (
        "# policysync's settings; paths are relative to this file. The others (limits, the\n"
        "# apply guard, the journal folder) keep their defaults: policysync's README,\n"
        '# "Settings and limits".\n'
        f'provider = "{provider}"\n'
        f'policies = "{POLICIES}"\n'
    ).encode()


def ignoring(existing: bytes | None) -> bytes:
    """A `.gitignore` (`existing`, else a new one) that leaves out policysync's journal
    folder: `existing` itself when it already does."""
    lines = (existing or b"").decode("utf-8", "replace").splitlines()
    names = {JOURNAL_IGNORE, JOURNAL_IGNORE.rstrip("/")}
    if any(line.strip().removeprefix("/") in names for line in lines):
        assert existing is not None
        return existing
    entry = f"# policysync's journal of apply and rollback runs\n{JOURNAL_IGNORE}\n".encode()
    if not existing:
        return entry
    return existing + (b"" if existing.endswith(b"\n") else b"\n") + b"\n" + entry


def starter_files(provider: str, live: Sequence[OrgPolicy] | None = None) -> dict[str, bytes]:
    """The provider's starter files (`FileFormat.starter`), by their path in the new
    repository."""
    made = file_format(provider).starter(live)
    return {f"{POLICIES}/{name}": data for name, data in sorted(made.items())}


def files(provider: str, pinned: Pins) -> dict[str, bytes]:
    """Every file `init` writes, by its path in the new repository, with placeholders
    (`.gitignore` as it is when there is none)."""
    out = {SETTINGS: settings_file(provider), GITIGNORE: ignoring(None)}
    out.update(starter_files(provider))
    out[ORGS_KEEP] = b""
    for name in schemas.SCHEMA_MODELS:
        out[f"{SCHEMAS}/{schemas.filename(name)}"] = schemas.render(name).encode("utf-8")
    out.update(scaffold_callers(provider, pinned))
    return out


def stale(directory: Path) -> list[str]:
    """This repository's callers in `directory` that are missing or differ from what
    the templates give."""
    return [
        str(directory / name)
        for name, text in own_callers().items()
        if not (directory / name).is_file()
        or (directory / name).read_text(encoding="utf-8") != text
    ]


def main(argv: list[str]) -> int:
    directory = Path(__file__).resolve().parent.parent / WORKFLOWS
    if argv == ["--write"]:
        for name, text in own_callers().items():
            (directory / name).write_text(text, encoding="utf-8")
        return 0
    if argv == ["--check"]:
        out_of_date = stale(directory)
        for path in out_of_date:
            print(f"{path} is out of date: run `make callers`", file=sys.stderr)
        return 1 if out_of_date else 0
    print("usage: python -m policysync.scaffold --write | --check", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

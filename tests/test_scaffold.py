"""What `policysync init` writes, as pure parts: the callers (this repository's own come
from the same templates), the pins of their `uses:` lines, the `.gitignore` entry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from policysync import __version__, scaffold
from policysync.errors import UsageError

ROOT = Path(__file__).parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
SHA = "5f0c6a1e" * 5


def load(text: str | bytes) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(text)
    document["on"] = document.pop(True)  # YAML 1.1 reads the key `on` as true
    return document


def test_this_repositorys_callers_are_generated_from_the_templates() -> None:
    assert scaffold.stale(WORKFLOWS) == [], "run `make callers` and commit the result"


def test_stale_detects_an_edited_caller(tmp_path: Path) -> None:
    for name, text in scaffold.own_callers().items():
        (tmp_path / name).write_text(text)
    assert scaffold.stale(tmp_path) == []
    edited = tmp_path / "policy-drift.yml"
    edited.write_text(edited.read_text().replace("17 6 * * *", "0 0 * * *"))
    (tmp_path / "policy-pr.yml").unlink()
    assert scaffold.stale(tmp_path) == [str(tmp_path / "policy-pr.yml"), str(edited)]


@pytest.mark.parametrize("provider", ["stytch", "zenml"])
@pytest.mark.parametrize("kind", scaffold.KINDS)
def test_a_written_caller_is_this_repositorys_but_for_uses_and_provider(
    kind: str, provider: str
) -> None:
    pinned = scaffold.Pins("acme/policysync", SHA)
    written = scaffold.scaffold_callers(provider, pinned)[f".github/workflows/policy-{kind}.yml"]
    ours = load((WORKFLOWS / f"policy-{kind}.yml").read_text())
    theirs = load(written)
    (job,) = theirs["jobs"].values()
    assert job.pop("uses") == f"acme/policysync/.github/workflows/policysync-{kind}.yml@{SHA}"
    assert job["with"].pop("provider") == provider
    (own_job,) = ours["jobs"].values()
    assert own_job.pop("uses") == f"./.github/workflows/policysync-{kind}.yml"
    assert own_job["with"].pop("provider") == "stytch"
    assert theirs == ours
    uses_line = next(line for line in written.decode().splitlines() if " uses: " in line)
    assert uses_line.endswith(f"@{SHA} # v{__version__}")  # the tag, for people


def test_the_placeholders_are_named_in_the_callers_until_both_pins_are_given() -> None:
    placeholder = scaffold.scaffold_callers("stytch", scaffold.Pins())
    for text in placeholder.values():
        assert b"OWNER/policysync/.github/workflows/" in text
        assert b"@" + b"0" * 40 + b" # v" in text
        assert b"Replace the placeholders OWNER/policysync" in text
    assert len(scaffold.Pins().placeholders()) == 2
    assert scaffold.Pins("acme/policysync").placeholders() == (
        f"the SHA of zeros (the commit of policysync's tag v{__version__}, --ref)",
    )
    pinned = scaffold.scaffold_callers("stytch", scaffold.Pins("acme/policysync", SHA))
    for text in pinned.values():
        assert b"OWNER" not in text
        assert b"placeholder" not in text


def test_pins_take_a_repository_and_a_full_commit_sha() -> None:
    assert scaffold.pins(None, None) == scaffold.Pins()
    assert scaffold.pins("acme/policysync", SHA.upper()) == scaffold.Pins("acme/policysync", SHA)
    for repository in ("acme", "acme/policysync/extra", "/policysync", "acme/poli cysync"):
        with pytest.raises(UsageError, match="OWNER/NAME"):
            scaffold.pins(repository, None)
    for ref in (f"v{__version__}", "main", SHA[:12], SHA + "0", "g" * 40):
        with pytest.raises(UsageError, match="full commit SHA") as refused:
            scaffold.pins("acme/policysync", ref)
        assert f"https://github.com/acme/policysync v{__version__}" in str(refused.value)


@pytest.mark.parametrize(
    ("existing", "expected"),
    [
        (None, b"# policysync's journal of apply and rollback runs\n.policysync/\n"),
        (b"", b"# policysync's journal of apply and rollback runs\n.policysync/\n"),
        (b".venv/", b".venv/\n\n# policysync's journal of apply and rollback runs\n.policysync/\n"),
        (b"*.pyc\n", b"*.pyc\n\n# policysync's journal of apply and rollback runs\n.policysync/\n"),
        (b"a\n/.policysync\nb\n", b"a\n/.policysync\nb\n"),
        (b".policysync/\n", b".policysync/\n"),
    ],
)
def test_the_gitignore_gains_the_journal_once(existing: bytes | None, expected: bytes) -> None:
    assert scaffold.ignoring(existing) == expected
    assert scaffold.ignoring(expected) == expected

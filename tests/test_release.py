"""What policysync is installed and released from: the locks (requirements/*.txt), the
composite action's install step, and the release workflow (release.yml), its `run:`
steps run for real (support/workflows.py) on a checkout of policysync's own source.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from support import fake_gh
from support.gitkit import commit_all, git
from support.workflows import ROOT, STEP_TIMEOUT, VENV, WORKFLOWS, Artifacts, Job, Runner, gh, load

import policysync

RUNTIME_LOCK = ROOT / "requirements" / "runtime.txt"
BUILD_LOCK = ROOT / "requirements" / "build.txt"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
VERSION = policysync.__version__
TAG = f"v{VERSION}"
SDIST = f"policysync-{VERSION}.tar.gz"
WHEEL = f"policysync-{VERSION}-py3-none-any.whl"
PIN = re.compile(r"^([A-Za-z0-9][\w.-]*)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")
HASH = re.compile(r"^\s+--hash=sha256:([0-9a-f]{64})(?:\s*\\)?$")
# Where the lock must hold: Python 3.11 and newer, on each operating system.
ENVIRONMENTS = [
    {"python_version": version, "python_full_version": f"{version}.0", **system}
    for version in ("3.11", "3.12", "3.13", "3.14")
    for system in (
        {"sys_platform": "linux", "os_name": "posix", "platform_system": "Linux"},
        {"sys_platform": "darwin", "os_name": "posix", "platform_system": "Darwin"},
        {"sys_platform": "win32", "os_name": "nt", "platform_system": "Windows"},
    )
]


# The locks.


def pins(lock: Path) -> dict[str, tuple[str, str | None, list[str]]]:
    """A lock's requirements: name -> (version, marker, sha256 hashes)."""
    found: dict[str, tuple[str, str | None, list[str]]] = {}
    current = ""
    for line in lock.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        pinned = PIN.match(line)
        if pinned:
            current = canonicalize_name(pinned[1])
            assert current not in found, f"{lock.name}: {current} twice"
            found[current] = (pinned[2], pinned[3], [])
            continue
        hashed = HASH.match(line)
        assert hashed, f"{lock.name}: not a pin or a hash: {line!r}"
        assert current, f"{lock.name}: a hash before any pin"
        found[current][2].append(hashed[1])
    return found


def possible(marker: Marker | None) -> bool:
    """Whether a dependency's marker holds somewhere the lock must hold (never for an
    extra: policysync asks for none)."""
    if marker is None:
        return True
    return any(marker.evaluate({**env, "extra": ""}) for env in ENVIRONMENTS)


def closure(roots: list[str]) -> set[str]:
    """The distributions `roots` need, by the metadata of this virtual environment."""
    needed: set[str] = set()
    todo = [Requirement(r) for r in roots]
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        if name in needed or not possible(requirement.marker):
            continue
        needed.add(name)
        try:
            todo += [Requirement(r) for r in importlib.metadata.requires(name) or []]
        except importlib.metadata.PackageNotFoundError:  # needed elsewhere (colorama)
            assert not possible_here(requirement.marker), name
    return needed


def possible_here(marker: Marker | None) -> bool:
    return marker is None or marker.evaluate({"extra": ""})


@pytest.mark.parametrize("lock", [RUNTIME_LOCK, BUILD_LOCK], ids=lambda p: p.name)
def test_locks_pin_every_distribution_with_the_sha256_of_its_files(lock: Path) -> None:
    found = pins(lock)
    assert found
    for name, (version, _, hashes) in found.items():
        assert re.fullmatch(r"[\w.+!-]+", version), name
        assert hashes, f"{lock.name}: {name} has no hash"
        assert len(hashes) == len(set(hashes)), name
    assert "--index-url" not in lock.read_text()  # the client's own package index


def test_runtime_lock_is_policysyncs_dependencies_and_theirs_within_pyprojects_ranges() -> None:
    found = pins(RUNTIME_LOCK)
    dependencies = PYPROJECT["project"]["dependencies"]
    for dependency in map(Requirement, dependencies):
        version = found[canonicalize_name(dependency.name)][0]
        assert dependency.specifier.contains(version), f"{dependency}: {version}"
    assert set(found) == closure(dependencies)


def test_build_lock_holds_the_build_backend_of_pyproject_and_the_front_end() -> None:
    found = pins(BUILD_LOCK)
    requested = [
        line
        for line in (ROOT / "requirements" / "build.in").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    for requirement in map(Requirement, [*PYPROJECT["build-system"]["requires"], *requested]):
        version = found[canonicalize_name(requirement.name)][0]
        assert requirement.specifier.contains(version), f"{requirement}: {version}"
    assert {"hatchling", "build"} <= set(found)
    assert set(found) == closure(requested)


def test_this_virtual_environment_runs_the_locked_versions() -> None:
    """`make` installs the runtime lock first (with its hashes), so that the tests run
    what the composite action installs. pip, offline, finds every pin satisfied here."""
    for name, (version, marker, _) in pins(RUNTIME_LOCK).items():
        if marker is None or Marker(marker).evaluate():
            assert importlib.metadata.version(name) == version, name
    checked = subprocess.run(
        [
            *(VENV / "bin" / "python", "-m", "pip", "install", "--dry-run", "--no-index"),
            *("--require-hashes", "--disable-pip-version-check", "-r", str(RUNTIME_LOCK)),
        ],
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Would install" not in checked.stdout


# The composite action's install step.


@pytest.fixture
def runner(tmp_path: Path) -> Runner:
    workspace = tmp_path / "checkout"
    workspace.mkdir()
    state = tmp_path / "gh-state.json"
    state.write_text(json.dumps(fake_gh.initial_state()))
    return Runner(workspace, tmp_path / "runner", state, Artifacts())


RECORDER = """\
#!{python}
import json, sys
with open({log!r}, "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
sys.exit(1 if {fail!r} and {fail!r} in sys.argv else 0)
"""
FAKE_PYTHON3 = """\
#!{python}
import shutil, sys
from pathlib import Path
assert sys.argv[1:3] == ["-m", "venv"], sys.argv
bin = Path(sys.argv[3]) / "bin"
bin.mkdir(parents=True)
shutil.copy({recorder!r}, bin / "python")
(bin / "policysync").write_text("#!/bin/sh\\necho policysync, version 9.9.9\\n")
(bin / "policysync").chmod(0o755)
"""


def install_step(tmp_path: Path, runner: Runner, fail: str = "") -> tuple[Any, list[list[str]]]:
    """The action's `Install policysync` step, run with a fake `python3` whose venv's
    python records each call (and fails the one holding `fail`)."""
    log = tmp_path / "python-calls.jsonl"
    recorder = tmp_path / "recorder.py"
    recorder.write_text(RECORDER.format(python=sys.executable, log=str(log), fail=fail))
    recorder.chmod(0o755)
    python3 = runner.fakebin / "python3"
    python3.write_text(FAKE_PYTHON3.format(python=sys.executable, recorder=str(recorder)))
    python3.chmod(0o755)
    job = runner.action(ROOT / "action.yml", {}, skip={"Run policysync"}, prepare=lambda _: None)
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return job, calls


PIP = ["-m", "pip", "--quiet", "--disable-pip-version-check"]


def test_composite_action_installs_the_locks_with_hashes_then_its_checkout_offline(
    tmp_path: Path, runner: Runner
) -> None:
    job, calls = install_step(tmp_path, runner)
    assert job.ok, job.log
    assert calls == [
        [
            *(*PIP, "install", "--require-hashes"),
            *("-r", f"{ROOT}/requirements/runtime.txt", "-r", f"{ROOT}/requirements/build.txt"),
        ],
        [*PIP, "install", "--no-deps", "--no-build-isolation", "--no-index", str(ROOT)],
        [*PIP, "check"],
    ]
    assert "policysync, version 9.9.9" in job.log


@pytest.mark.parametrize("failing", ["--require-hashes", "--no-index", "check"])
def test_composite_action_stops_at_the_first_install_that_fails(
    tmp_path: Path, runner: Runner, failing: str
) -> None:
    """A file whose hash does not match, a checkout that cannot be built offline, or
    dependencies that do not fit: the step fails there, with no unpinned retry, and
    policysync is not put on PATH."""
    job, calls = install_step(tmp_path, runner, fail=failing)
    assert not job.ok
    assert failing in calls[-1]
    assert "policysync, version" not in job.log


# release.yml


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A checkout of policysync's source at a tag, as the release workflow gets it."""
    checkout = tmp_path / "policysync"
    checkout.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, checkout / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("policysync", "schemas", "requirements"):
        shutil.copytree(ROOT / folder, checkout / folder, ignore=ignore)
    git(checkout, "init", "-q", "-b", "main")
    commit_all(checkout, "policysync")
    git(checkout, "tag", TAG)
    return checkout


@pytest.fixture
def releaser(source: Path, tmp_path: Path) -> Runner:
    state = tmp_path / "gh-state.json"
    state.write_text(json.dumps(fake_gh.initial_state()))
    made = Runner(source, tmp_path / "runner", state, Artifacts())
    made.ref_name = TAG
    return made


def build(runner: Runner) -> Any:
    """The build job, its `Install the build tools` step left out: this virtual
    environment (build and hatchling are dev dependencies) stands in for that venv."""
    return runner.job(
        "release.yml",
        "build",
        skip={"Install the build tools"},
        prepare=lambda temp: (temp / "policysync-build-venv").symlink_to(VENV),
    )


def artifacts_of(runner: Runner) -> Artifacts:
    assert isinstance(runner.uses, Artifacts)
    return runner.uses


def test_release_builds_the_sdist_and_the_wheel_of_the_tag(releaser: Runner) -> None:
    job = build(releaser)
    assert job.ok, job.log
    dist = artifacts_of(releaser).runs[releaser.run_id]["dist"]
    assert set(dist) == {SDIST, WHEEL}
    for name, content in dist.items():
        assert f"{hashlib.sha256(content).hexdigest()}  {name}" in job.summary
    with zipfile.ZipFile(io.BytesIO(dist[WHEEL])) as wheel:
        names = wheel.namelist()
    assert "policysync/cli.py" in names
    assert f"policysync-{VERSION}.dist-info/entry_points.txt" in names
    assert not [n for n in names if n.startswith("tests/") or n.endswith(".pyc")]
    with tarfile.open(fileobj=io.BytesIO(dist[SDIST])) as sdist:
        members = sdist.getnames()
    assert f"policysync-{VERSION}/schemas/org-policy.schema.json" in members
    assert f"policysync-{VERSION}/policysync/__init__.py" in members


def test_release_refuses_a_tag_that_is_not_the_version(releaser: Runner) -> None:
    releaser.ref_name = "v9.9.9"
    job = build(releaser)
    assert not job.ok
    assert f"::error title=release::the tag v9.9.9 is not {TAG}" in job.log
    assert releaser.run_id not in artifacts_of(releaser).runs  # nothing to release


def test_release_attaches_the_files_and_their_sums_to_the_release(releaser: Runner) -> None:
    built = build(releaser)
    assert built.ok, built.log
    dist = artifacts_of(releaser).runs[releaser.run_id]["dist"]
    sums = "".join(f"{hashlib.sha256(dist[n]).hexdigest()}  {n}\n" for n in (SDIST, WHEEL))
    expected = {
        SDIST: hashlib.sha256(dist[SDIST]).hexdigest(),
        WHEEL: hashlib.sha256(dist[WHEEL]).hexdigest(),
        "SHA256SUMS": hashlib.sha256(sums.encode()).hexdigest(),
    }
    job = releaser.job("release.yml", "release", needs={"build": built})
    assert job.ok, job.log
    release = gh(releaser.gh_state)["releases"][TAG]
    assert release == {
        "title": f"policysync {TAG}",
        "prerelease": False,
        "verify_tag": True,
        "generate_notes": True,
        "assets": expected,
    }
    again = releaser.job("release.yml", "release", needs={"build": built})  # a re-run
    assert again.ok, again.log
    assert gh(releaser.gh_state)["calls"][-1][:2] == ["release", "upload"]
    assert "--clobber" in gh(releaser.gh_state)["calls"][-1]
    assert gh(releaser.gh_state)["releases"][TAG]["assets"] == expected

    releaser.ref_name = f"{TAG}rc1"  # a tag that is not vX.Y.Z: a pre-release
    job = releaser.job("release.yml", "release", needs={"build": built})
    assert job.ok, job.log
    assert gh(releaser.gh_state)["releases"][f"{TAG}rc1"]["prerelease"] is True


def test_release_publishes_only_when_the_repository_variable_says_so(releaser: Runner) -> None:
    built = build(releaser)
    released = releaser.job("release.yml", "release", needs={"build": built})
    assert released.ok, released.log
    needs = {"build": built, "release": released}
    assert not releaser.job("release.yml", "publish", needs=needs).ran  # off by default
    releaser.variables["PUBLISH_TO_PACKAGE_INDEX"] = "false"
    assert not releaser.job("release.yml", "publish", needs=needs).ran
    releaser.variables["PUBLISH_TO_PACKAGE_INDEX"] = "true"
    published = releaser.job("release.yml", "publish", needs=needs)
    assert published.ran
    publish = [g for u, g in artifacts_of(releaser).used if u.startswith("pypa/")]
    assert publish == [{"packages-dir": "dist/"}]
    failed = {"build": built, "release": Job(ran=True, ok=False)}
    assert not releaser.job("release.yml", "publish", needs=failed).ran


def test_release_grants_write_and_identity_to_one_job_each() -> None:
    document = load(WORKFLOWS / "release.yml")
    assert document["on"] == {"push": {"tags": ["v*"]}}
    jobs = document["jobs"]
    assert jobs["build"]["permissions"] == {"contents": "read"}
    assert jobs["release"]["permissions"] == {"contents": "write"}
    assert jobs["publish"]["permissions"] == {"contents": "read", "id-token": "write"}
    assert jobs["publish"]["environment"] == "package-index"
    assert jobs["publish"]["if"] == "vars.PUBLISH_TO_PACKAGE_INDEX == 'true'"
    assert jobs["publish"]["needs"] == ["build", "release"]
    (publish,) = [s for s in jobs["publish"]["steps"] if "pypa/" in s.get("uses", "")]
    assert set(publish["with"]) == {"packages-dir"}  # no password: trusted publishing
    install = [s for s in jobs["build"]["steps"] if s.get("name") == "Install the build tools"]
    assert "--require-hashes -r requirements/build.txt" in install[0]["run"]

"""The wheel as other teams install it: what it carries, and policysync run from it in a
fresh virtual environment, away from this repository.

Offline, as the whole suite: the wheel is built with the dev extra's hatchling (no build
isolation, no index), and each fresh environment gets policysync's dependencies as links
to the ones installed here, only those the wheel's metadata asks for (its Requires-Dist,
followed through theirs). pip then installs the wheel there with --no-index, resolving
its requirements against those links: a dependency missing from pyproject.toml, or a
server package outside the `emulator` extra, fails here.
"""

from __future__ import annotations

import email.parser
import hashlib
import importlib.metadata
import json
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from support.processes import Running, clean_env

from policysync import schemas
from policysync.emulator.server import DEFAULT_PROJECT_ID, DEFAULT_SECRET

ROOT = Path(__file__).parent.parent
# The Apache License 2.0 as the Apache Software Foundation distributes it
# (LICENSE-2.0.txt, 11,358 bytes).
APACHE_2_SHA256 = "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"
SERVER_PACKAGES = {"starlette", "uvicorn", "httptools"}


def pip(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """This environment's pip, never reaching an index."""
    return subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    built = pip(
        "wheel", "--no-build-isolation", "--no-deps", "--no-index", "-w", str(out), str(ROOT)
    )
    assert built.returncode == 0, built.stderr
    (path,) = out.glob("policysync-*.whl")
    return path


def metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return email.parser.Parser().parsestr(archive.read(name).decode("utf-8"))


def requirements(wheel: Path) -> list[Requirement]:
    return [Requirement(text) for text in metadata(wheel).get_all("Requires-Dist") or []]


def wanted(requirement: Requirement, extras: Iterable[str]) -> bool:
    """Whether `requirement` applies here, asked for with `extras`."""
    marker = requirement.marker
    return marker is None or any(marker.evaluate({"extra": e}) for e in ("", *extras))


# --- What the wheel carries ----------------------------------------------------------


def test_the_wheel_carries_the_schemas_equal_to_the_committed_ones(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        carried = {
            n.removeprefix("policysync/_schemas/"): archive.read(n)
            for n in archive.namelist()
            if n.startswith("policysync/_schemas/")
        }
        names = set(archive.namelist())
    assert set(carried) == {schemas.filename(name) for name in schemas.SCHEMA_MODELS}
    for name in schemas.SCHEMA_MODELS:
        filename = schemas.filename(name)
        assert carried[filename] == (ROOT / "schemas" / filename).read_bytes(), filename
        assert carried[filename].decode("utf-8") == schemas.render(name), filename
    # `policysync.schemas` stays a module: no package of that name shadows it
    assert "policysync/schemas.py" in names
    assert not any(n.startswith("policysync/schemas/") for n in names)


def test_the_wheel_carries_the_apache_license(wheel: Path) -> None:
    license_text = (ROOT / "LICENSE").read_bytes()
    assert hashlib.sha256(license_text).hexdigest() == APACHE_2_SHA256
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/licenses/LICENSE")]
        assert archive.read(name) == license_text
    meta = metadata(wheel)
    assert meta["License-Expression"] == "Apache-2.0"
    assert meta.get_all("License-File") == ["LICENSE"]


def test_the_server_packages_come_only_with_the_emulator_extra(wheel: Path) -> None:
    every = requirements(wheel)
    core = {canonicalize_name(r.name) for r in every if r.marker is None}
    extra = {
        canonicalize_name(r.name)
        for r in every
        if r.marker is not None and r.marker.evaluate({"extra": "emulator"})
    }
    assert core & SERVER_PACKAGES == set()
    assert extra == SERVER_PACKAGES
    assert {"pydantic", "click", "httpx", "gitpython"} <= core
    assert "emulator" in (metadata(wheel).get_all("Provides-Extra") or [])


# --- The wheel installed in a fresh virtual environment ------------------------------


@dataclass
class Venv:
    root: Path
    site: Path

    def bin(self, name: str) -> str:
        return str(self.root / "bin" / name)

    def run(self, *argv: str, cwd: Path, env: dict[str, str] | None = None) -> Result:
        """`policysync ARGV` of this environment, in `cwd`."""
        done = subprocess.run(
            [self.bin("policysync"), *argv],
            cwd=cwd,
            env=fresh_env() if env is None else env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return Result(done.returncode, done.stdout, done.stderr)


@dataclass
class Result:
    code: int
    out: str
    err: str


def fresh_env(**extra: str) -> dict[str, str]:
    """No credentials, and nothing that would lead Python back to this repository."""
    env = clean_env(**extra)
    for name in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV"):
        env.pop(name, None)
    return env


def link_dependencies(wheel: Path, extras: tuple[str, ...], site: Path) -> set[str]:
    """Link into `site` the distributions installed here that policysync[extras] needs,
    its requirements followed through theirs; their names."""
    todo = [(r, extras) for r in requirements(wheel)]
    done: set[str] = set()
    while todo:
        requirement, asked = todo.pop()
        name = canonicalize_name(requirement.name)
        if not wanted(requirement, asked) or name in done or name == "policysync":
            continue
        done.add(name)
        dist = importlib.metadata.distribution(name)
        assert requirement.specifier.contains(dist.version, prereleases=True), (
            f"{name} {dist.version} installed here does not satisfy {requirement}"
        )
        base = Path(str(dist.locate_file("")))
        tops = {f.parts[0] for f in dist.files or []} - {"..", "__pycache__"}
        for top in sorted(tops):
            if (base / top).exists() and not (site / top).exists():
                (site / top).symlink_to(base / top)
        todo += [(Requirement(text), tuple(requirement.extras)) for text in dist.requires or []]
    return done


def make_venv(root: Path, wheel: Path, extras: tuple[str, ...]) -> Venv:
    """A fresh environment (no system site packages, no pip of its own) holding the wheel,
    with `extras`, and only the dependencies that asks for."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    site = subprocess.run(
        [
            str(root / "bin" / "python"),
            "-c",
            "import sysconfig; print(sysconfig.get_path('purelib'))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    venv = Venv(root, Path(site))
    link_dependencies(wheel, extras, venv.site)
    spec = f"policysync[{','.join(extras)}] @ {wheel.as_uri()}" if extras else str(wheel)
    python = ("--python", venv.bin("python"))
    installed = pip(*python, "install", "--quiet", "--no-index", spec)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    checked = pip(*python, "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    return venv


@pytest.fixture(scope="module")
def plain(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Venv:
    return make_venv(tmp_path_factory.mktemp("plain") / "venv", wheel, ())


@pytest.fixture(scope="module")
def with_emulator(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Venv:
    return make_venv(tmp_path_factory.mktemp("emulator") / "venv", wheel, ("emulator",))


@pytest.fixture
def away(tmp_path: Path) -> Path:
    """A folder outside this repository holding a copy of the sample `policies/`."""
    shutil.copytree(ROOT / "policies", tmp_path / "policies")
    return tmp_path


def imports(venv: Venv, code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [venv.bin("python"), "-c", code],
        cwd=cwd,
        env=fresh_env(),
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_plain_install_is_the_wheel_without_server_packages(plain: Venv, away: Path) -> None:
    found = imports(plain, "import policysync; print(policysync.__file__)", away)
    assert found.returncode == 0, found.stderr
    assert Path(found.stdout.strip()).is_relative_to(plain.site)
    for package in sorted(SERVER_PACKAGES):
        missing = imports(plain, f"import {package}", away)
        assert missing.returncode == 1
        assert "ModuleNotFoundError" in missing.stderr


def test_validate_and_schema_run_from_the_plain_install(plain: Venv, away: Path) -> None:
    assert plain.run("--version", cwd=away).out.startswith("policysync, version ")
    validated = plain.run("validate", "--format", "json", cwd=away)
    assert validated.code == 0, validated.err
    assert json.loads(validated.out)["valid"] is True

    (away / "policies" / "orgs" / "acme.json").write_text("{")
    assert plain.run("validate", cwd=away).code == 1

    listed = plain.run("schema", cwd=away)
    assert (listed.code, listed.out.split()) == (0, list(schemas.SCHEMA_MODELS))
    printed = plain.run("schema", "org-policy", cwd=away)
    assert printed.out == (ROOT / "schemas" / "org-policy.schema.json").read_text()
    written = plain.run("schema", "--out", "schemas", cwd=away)
    assert written.code == 0, written.err
    for name in schemas.SCHEMA_MODELS:
        filename = schemas.filename(name)
        assert (away / "schemas" / filename).read_bytes() == (
            ROOT / "schemas" / filename
        ).read_bytes()


@pytest.mark.parametrize("provider", ["stytch", "zenml"])
def test_init_writes_a_repository_the_plain_install_validates(
    plain: Venv, tmp_path: Path, provider: str
) -> None:
    """`policysync init` from the wheel alone: its templates and schemas travel in it."""
    made = plain.run("init", "repo", "--provider", provider, cwd=tmp_path)
    assert made.code == 0, made.err
    repo = tmp_path / "repo"
    for kind in ("pr", "drift", "apply", "rollback"):
        caller = (repo / ".github" / "workflows" / f"policy-{kind}.yml").read_text()
        assert f"/.github/workflows/policysync-{kind}.yml@{'0' * 40} # v" in caller
        assert f"provider: {provider}" in caller
    for name in schemas.SCHEMA_MODELS:
        filename = schemas.filename(name)
        assert (repo / "schemas" / filename).read_bytes() == (
            ROOT / "schemas" / filename
        ).read_bytes()
    starter = "project.json" if provider == "stytch" else "permissions.json"
    document = json.loads((repo / "policies" / starter).read_text())
    assert (repo / "policies" / document["$schema"]).resolve().parent == (repo / "schemas")
    validated = plain.run("validate", "--format", "json", cwd=repo)
    assert validated.code == 0, validated.err
    assert json.loads(validated.out)["valid"] is True
    formatted = plain.run("fmt", "--check", cwd=repo)
    assert formatted.code == 0, formatted.out + formatted.err
    again = plain.run("init", "--provider", provider, cwd=repo)
    assert again.code == 0, again.err
    assert ": 0 created, 0 updated, 21 unchanged." in again.out


def test_the_emulator_without_its_extra_says_how_to_install_it(plain: Venv, away: Path) -> None:
    result = plain.run("emulator", "--seed", "policies/emulator-seed.json", cwd=away)
    assert result.code == 1
    assert "pip install 'policysync[emulator]'" in result.err
    assert "needs the emulator extra" in result.err
    assert "Traceback" not in result.err
    assert "internal error" not in result.err
    assert result.out == ""


def test_the_whole_loop_runs_from_the_install_with_the_emulator_extra(
    with_emulator: Venv, away: Path
) -> None:
    proc = subprocess.Popen(
        [
            with_emulator.bin("policysync"),
            "emulator",
            "--port",
            "0",
            "--seed",
            "policies/emulator-seed.json",
        ],
        cwd=away,
        env=fresh_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    running = None
    try:
        running = Running(proc)
        env = fresh_env(
            STYTCH_BASE_URL=running.url,
            STYTCH_PROJECT_ID=DEFAULT_PROJECT_ID,
            STYTCH_SECRET=DEFAULT_SECRET,
        )

        def run(*argv: str) -> Result:
            return with_emulator.run(*argv, cwd=away, env=env)

        planned = run("plan", "--detailed-exitcode", "--out", "plan.json")
        assert planned.code == 2, planned.out + planned.err
        applied = run(
            "apply", "plan.json", "--allow-delete", "--allow-delete-in-use", "--journal", "journal"
        )
        assert applied.code == 0, applied.out + applied.err
        again = run("plan", "--detailed-exitcode")
        assert again.code == 0, again.out + again.err
        drift = run("drift")
        assert drift.code == 0, drift.out + drift.err
        # a new policy repository, adopting what live now holds
        made = run("init", "adopted", "--from-live", "--all-orgs")
        assert made.code == 0, made.out + made.err
        adopted = with_emulator.run("plan", "--detailed-exitcode", cwd=away / "adopted", env=env)
        assert adopted.code == 0, adopted.out + adopted.err
    finally:
        if running is not None:
            running.stop()
        else:
            proc.kill()
            proc.communicate(timeout=10)

"""`policysync emulator` as a user runs it: in a real process, on 127.0.0.1 only."""

from __future__ import annotations

import base64
import json
import signal
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from support import clirun
from support.clirun import run as cli
from support.processes import clean_env, emulator_process, run

from policysync.canonical import same_project
from policysync.default_project import DEFAULT_POLICY
from policysync.emulator.command import EXTRA_PACKAGES
from policysync.emulator.seed import Seed
from policysync.emulator.server import DEFAULT_PROJECT_ID, DEFAULT_SECRET, base_url
from policysync.models import ProjectPolicy, ProjectPolicyFile
from policysync.providers.http import check_base_url
from policysync.rules import check_project

from .conftest import ROOT, SEED_FILE

GIVEN_SECRET = "secret-test-Zq8v-given-by-the-user-3141592653"
GIVEN_PROJECT = "project-test-22222222-2222-4222-8222-222222222222"


def policy_status(url: str, project_id: str, secret: str) -> int:
    response = httpx.get(url + "v1/b2b/rbac/policy", auth=(project_id, secret), timeout=10)
    return response.status_code


def assert_clean_failure(result: Any, *fragments: str) -> None:
    """Exit 1, every fragment in stderr, no traceback, nothing that looks like a bug."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    for fragment in fragments:
        assert fragment in result.stderr, (fragment, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    assert "internal error" not in result.stderr
    assert "policysync emulator serving" not in result.stdout


def test_prints_base_url_and_working_default_credentials(tmp_path: Path) -> None:
    with emulator_process("--seed", str(SEED_FILE), cwd=tmp_path) as running:
        assert running.first_line.startswith("policysync emulator serving Stytch's B2B RBAC API")
        assert policy_status(running.url, DEFAULT_PROJECT_ID, DEFAULT_SECRET) == 200
        assert policy_status(running.url, DEFAULT_PROJECT_ID, "other") == 401
        running.stop()
    lines = running.stdout.splitlines()
    assert f"  STYTCH_BASE_URL={running.url}" in lines
    assert f"  STYTCH_PROJECT_ID={DEFAULT_PROJECT_ID}" in lines
    assert f"  STYTCH_SECRET={DEFAULT_SECRET}" in lines
    assert any(line.strip().startswith("state: in memory") for line in lines)
    assert "warning" not in running.stderr


@pytest.fixture(params=["flag", "environment"])
def given_credentials(request: pytest.FixtureRequest) -> Iterator[tuple[list[str], dict[str, str]]]:
    if request.param == "flag":
        yield ["--project-id", GIVEN_PROJECT, "--secret", GIVEN_SECRET], clean_env()
    else:
        yield [], clean_env(STYTCH_PROJECT_ID=GIVEN_PROJECT, STYTCH_SECRET=GIVEN_SECRET)


def test_a_given_secret_is_used_and_never_printed(
    tmp_path: Path, given_credentials: tuple[list[str], dict[str, str]]
) -> None:
    args, env = given_credentials
    with emulator_process("--seed", str(SEED_FILE), *args, cwd=tmp_path, env=env) as running:
        assert policy_status(running.url, GIVEN_PROJECT, GIVEN_SECRET) == 200
        assert policy_status(running.url, DEFAULT_PROJECT_ID, DEFAULT_SECRET) == 401
        assert policy_status(running.url, GIVEN_PROJECT, DEFAULT_SECRET) == 401
        running.stop()
    output = running.stdout + running.stderr
    assert GIVEN_SECRET not in output
    assert GIVEN_SECRET[7:25] not in output  # not even a part of it
    assert DEFAULT_SECRET not in output
    assert f"STYTCH_PROJECT_ID={GIVEN_PROJECT}" in running.stdout
    assert "STYTCH_SECRET=(from --secret or $STYTCH_SECRET)" in running.stdout


def test_a_rejected_seed_never_shows_the_secret(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    result = run("--seed", str(bad), "--secret", GIVEN_SECRET, cwd=tmp_path)
    assert_clean_failure(result, str(bad))
    assert GIVEN_SECRET not in result.stdout + result.stderr


def test_the_default_policy_is_the_sample_s_stytch_roles_and_resources() -> None:
    """A new project's policy: the sample's `project.json` without its own roles,
    resources and scopes."""
    sample = ProjectPolicyFile.model_validate_json((ROOT / "policies/project.json").read_text())
    stytch_roles = [r for r in sample.policy.roles if r.role_id.startswith("stytch_")]
    builtin = [r for r in sample.policy.resources if r.resource_id.startswith("stytch.")]
    expected = ProjectPolicy(roles=tuple(stytch_roles), resources=tuple(builtin))
    assert same_project(DEFAULT_POLICY, expected)  # as sets: the sample is in canonical order
    assert [r.role_id for r in DEFAULT_POLICY.roles] == ["stytch_admin", "stytch_member"]
    assert DEFAULT_POLICY.scopes == ()
    assert not check_project(DEFAULT_POLICY)


def live_policy(url: str) -> ProjectPolicy:
    answer = httpx.get(url + "v1/b2b/rbac/policy", auth=(DEFAULT_PROJECT_ID, DEFAULT_SECRET))
    assert answer.status_code == 200, answer.text
    return ProjectPolicy.model_validate(answer.json()["policy"])


def organization_count(url: str) -> int:
    auth = (DEFAULT_PROJECT_ID, DEFAULT_SECRET)
    answer = httpx.post(url + "v1/b2b/organizations/search", json={}, auth=auth, timeout=10)
    assert answer.status_code == 200, answer.text
    count: int = answer.json()["results_metadata"]["total"]
    return count


def test_an_empty_database_starts_as_a_new_project(tmp_path: Path) -> None:
    with emulator_process(cwd=tmp_path) as running:
        assert live_policy(running.url) == DEFAULT_POLICY
        assert organization_count(running.url) == 0
        running.stop()
    assert "  started empty: Stytch's default project policy (roles stytch_admin and " in (
        running.stdout
    )
    assert "--seed FILE loads a state" in running.stdout
    assert running.stderr == ""  # no warning


def test_an_empty_database_file_keeps_the_new_project_s_state(tmp_path: Path) -> None:
    """Started empty, a --db holds the new project's state: served again on the next
    start (with no `started empty` line), dumped, and no --seed is applied over it."""
    db = str(tmp_path / "new.db")
    with emulator_process("--db", db, cwd=tmp_path) as running:
        assert live_policy(running.url) == DEFAULT_POLICY
        running.stop()
    assert "started empty" in running.stdout
    with emulator_process("--db", db, "--seed", str(SEED_FILE), cwd=tmp_path) as running:
        assert live_policy(running.url) == DEFAULT_POLICY
        assert organization_count(running.url) == 0
        running.stop()
    assert "started empty" not in running.stdout
    assert f"--seed {SEED_FILE} was not applied" in running.stderr
    dumped = run("--db", db, "--dump", cwd=tmp_path)
    assert dumped.returncode == 0, dumped.stderr
    assert Seed.model_validate_json(dumped.stdout) == Seed(policy=DEFAULT_POLICY)


def test_on_every_interface_it_prints_a_loopback_url_policysync_accepts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--host 0.0.0.0` (and no --seed): the URL printed is 127.0.0.1's, and
    `policysync export` with it exports the new project's policy."""
    with emulator_process("--host", "0.0.0.0", cwd=tmp_path) as running:
        assert running.url.startswith("http://127.0.0.1:")
        assert f"  STYTCH_BASE_URL={running.url}" in running.stdout.splitlines()
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("STYTCH_PROJECT_ID", DEFAULT_PROJECT_ID)
        monkeypatch.setenv("STYTCH_SECRET", DEFAULT_SECRET)
        monkeypatch.setenv("STYTCH_BASE_URL", running.url)
        code, out, err = cli(["export"], capsys)
        assert code == 0, out + err
        running.stop()
    exported = ProjectPolicyFile.model_validate_json(
        (tmp_path / "policies/project.json").read_text()
    )
    assert same_project(exported.policy, DEFAULT_POLICY)
    assert "warning: listening on all interfaces (0.0.0.0): reachable from other machines; " in (
        running.stderr
    )
    assert f"this machine reaches it at {running.url}" in running.stderr


class _Bound:
    """What base_url reads of a bound socket."""

    def __init__(self, family: socket.AddressFamily, name: tuple[str, int], v6only: int) -> None:
        self.family, self._name, self._v6only = family, name, v6only

    def getsockname(self) -> tuple[str, int]:
        return self._name

    def getsockopt(self, level: int, option: int) -> int:
        assert (level, option) == (socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)
        return self._v6only


@pytest.mark.parametrize(
    ("family", "address", "v6only", "url"),
    [
        (socket.AF_INET, "0.0.0.0", 0, "http://127.0.0.1:8787/"),
        (socket.AF_INET6, "::", 0, "http://127.0.0.1:8787/"),  # IPv4 too
        (socket.AF_INET6, "::", 1, "http://[::1]:8787/"),  # IPv6 only
        (socket.AF_INET, "127.0.0.1", 0, "http://127.0.0.1:8787/"),
        (socket.AF_INET6, "::1", 1, "http://[::1]:8787/"),
        (socket.AF_INET, "192.0.2.7", 0, "http://192.0.2.7:8787/"),
    ],
)
def test_the_url_printed_for_an_address(
    family: socket.AddressFamily, address: str, v6only: int, url: str
) -> None:
    assert base_url(cast(socket.socket, _Bound(family, (address, 8787), v6only))) == url
    if address != "192.0.2.7":  # plain http to another machine is refused, rightly
        check_base_url(url, "STYTCH_BASE_URL", "https://test.stytch.com")


def _seed_data() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SEED_FILE.read_text())
    return data


def _with_project_role() -> str:
    data = _seed_data()
    data["organizations"][0]["org_policy"]["roles"][0]["role_id"] = "editor"
    return json.dumps(data)


def _with_unknown_action() -> str:
    data = _seed_data()
    data["organizations"][1]["org_policy"]["roles"][0]["permissions"][0]["actions"] = ["fly"]
    return json.dumps(data)


def _with_duplicate_slug() -> str:
    data = _seed_data()
    data["organizations"][1]["organization_slug"] = data["organizations"][0]["organization_slug"]
    return json.dumps(data)


def _with_duplicate_id() -> str:
    data = _seed_data()
    data["organizations"][2]["organization_id"] = data["organizations"][0]["organization_id"]
    return json.dumps(data)


def _with_duplicate_resource() -> str:
    data = _seed_data()
    data["policy"]["resources"].append(data["policy"]["resources"][-1])
    return json.dumps(data)


def _with_unknown_field() -> str:
    data = _seed_data()
    data["organizations"][0]["org_roles"] = []
    return json.dumps(data)


def _with_members(change: Callable[[dict[str, Any]], None]) -> str:
    data = _seed_data()
    change(data)
    return json.dumps(data)


def _member_elsewhere(data: dict[str, Any]) -> None:
    data["members"][1]["organization_id"] = "organization-test-nowhere"


def _member_twice(data: dict[str, Any]) -> None:
    data["members"][1]["member_id"] = data["members"][0]["member_id"]


def _member_ghost_role(data: dict[str, Any]) -> None:
    data["members"][0]["roles"][0]["role_id"] = "ghost"


def _rule_ghost_role(data: dict[str, Any]) -> None:
    initech = next(o for o in data["organizations"] if o["organization_slug"] == "initech")
    initech["rbac_email_implicit_role_assignments"][0]["role_id"] = "invoice-approver"


def _role_without_source(data: dict[str, Any]) -> None:
    data["members"][0]["roles"][0]["sources"] = []


BAD_SEEDS: dict[str, tuple[str, list[str]]] = {
    "member-of-no-organization": (
        _with_members(_member_elsewhere),
        ["members/1: organization 'organization-test-nowhere' is not among the seed's"],
    ),
    "member-twice": (_with_members(_member_twice), ["members/0 and members/1 are both member"]),
    "member-holding-no-role": (
        _with_members(_member_ghost_role),
        ["members/0/roles/0: role 'ghost' is neither a project role nor one of"],
    ),
    "rule-assigning-no-role": (
        _with_members(_rule_ghost_role),
        [
            "organizations/2/rbac_email_implicit_role_assignments/0: role 'invoice-approver'",
            "Stytch would never hold this state",
        ],
    ),
    "role-held-no-way": (
        _with_members(_role_without_source),
        ["members/0/roles/0/sources", "at least 1 item"],
    ),
    "not-json": ('{"policy": {', ["not a valid seed file", "Invalid JSON"]),
    "empty-file": ("", ["not a valid seed file"]),
    "top-level-array": ("[]", ["not a valid seed file"]),
    "no-policy": ('{"organizations": []}', ["not a valid seed file", "policy", "Field required"]),
    "org-without-slug": (
        json.dumps({**_seed_data(), "organizations": [{"organization_id": "o"}]}),
        ["organizations/0/organization_slug", "Field required"],
    ),
    "unknown-field": (_with_unknown_field(), ["org_roles", "Extra inputs are not permitted"]),
    "project-role": (_with_project_role(), ["is a project role", "/org_policy/roles/0/role_id"]),
    "unknown-action": (_with_unknown_action(), ["has no action", "fly"]),
    "duplicate-slug": (_with_duplicate_slug(), ["both named", "acme", "rename one"]),
    "duplicate-id": (_with_duplicate_id(), ["both named", "rename one"]),
    "duplicate-project-resource": (
        _with_duplicate_resource(),
        ['resource "audit-log" is defined twice', "/policy/resources/"],
    ),
}


@pytest.mark.parametrize("name", sorted(BAD_SEEDS))
def test_a_bad_seed_file_is_named_with_what_to_fix(tmp_path: Path, name: str) -> None:
    text, fragments = BAD_SEEDS[name]
    seed = tmp_path / f"{name}.json"
    seed.write_text(text)
    result = run("--port", "0", "--seed", str(seed), cwd=tmp_path)
    assert_clean_failure(result, f"{seed}: ", *fragments)


def test_a_missing_seed_file_is_a_usage_error(tmp_path: Path) -> None:
    result = run("--port", "0", "--seed", str(tmp_path / "nope.json"), cwd=tmp_path)
    assert_clean_failure(result, "nope.json", "does not exist")


def test_dump_needs_a_database_holding_a_state(tmp_path: Path) -> None:
    assert_clean_failure(run("--dump", cwd=tmp_path), "--dump needs --db")
    empty = tmp_path / "empty.db"
    assert_clean_failure(run("--dump", "--db", str(empty), cwd=tmp_path), "--dump needs --db")


@pytest.mark.parametrize("kind", ["not-sqlite", "missing-folder"])
def test_a_database_that_cannot_be_opened(tmp_path: Path, kind: str) -> None:
    if kind == "not-sqlite":
        db = tmp_path / "notes.txt"
        db.write_text("these are not the tables you are looking for\n" * 100)
    else:
        db = tmp_path / "no" / "such" / "folder" / "state.db"
    result = run("--port", "0", "--db", str(db), "--seed", str(SEED_FILE), cwd=tmp_path)
    assert_clean_failure(result, str(db), "cannot open the SQLite database")
    if kind == "not-sqlite":
        assert db.read_text().startswith("these are not the tables")


def test_a_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("--port", str(port), "--seed", str(SEED_FILE), cwd=tmp_path)
    assert_clean_failure(result, f"cannot listen on 127.0.0.1:{port}", "in use")


def test_bad_fault_options_are_usage_errors(tmp_path: Path) -> None:
    for args in (["--latency-ms", "ten"], ["--error-rate", "2"], ["--port", "70000"]):
        result = run(*args, "--seed", str(SEED_FILE), cwd=tmp_path)
        assert_clean_failure(result, "Invalid value")


def test_config_limits_and_disabled_orgs_are_enforced(tmp_path: Path) -> None:
    config = tmp_path / "policysync.toml"
    config.write_text("[limits]\nmax_roles_per_org = 5\n")  # the seed has up to 5
    args = ["--seed", str(SEED_FILE), "--config", str(config), "--disable-org-policy", "acme-42"]
    role = {"role_id": "ops", "permissions": [{"resource_id": "documents", "actions": ["read"]}]}
    auth = (DEFAULT_PROJECT_ID, DEFAULT_SECRET)
    with emulator_process(*args, cwd=tmp_path) as running:
        url = running.url + "v1/b2b/rbac/organizations/"
        roles = [{**role, "role_id": f"ops-{i}"} for i in range(6)]
        five = httpx.put(url + "globex", json={"org_policy": {"roles": roles[:5]}}, auth=auth)
        assert five.status_code == 200
        refused = httpx.put(url + "globex", json={"org_policy": {"roles": roles}}, auth=auth)
        assert refused.status_code == 400
        assert refused.json()["error_type"] == "too_many_roles"
        disabled = httpx.get(url + "acme", auth=auth)
        assert disabled.status_code == 401
        assert disabled.json()["error_type"] == "enterprise_endpoint"


@pytest.mark.parametrize(("limit", "statuses"), [("2", [200, 200, 429]), ("0", [200] * 3)])
def test_search_rate_limit_option(tmp_path: Path, limit: str, statuses: list[int]) -> None:
    auth = (DEFAULT_PROJECT_ID, DEFAULT_SECRET)
    args = ["--seed", str(SEED_FILE), "--search-rate-limit", limit]
    with emulator_process(*args, cwd=tmp_path) as running:
        url = running.url + "v1/b2b/organizations/search"
        got = [httpx.post(url, json={}, auth=auth, timeout=10).status_code for _ in statuses]
        running.stop()
    assert got == statuses


def test_hostile_requests_are_answered_and_leave_no_traceback(tmp_path: Path) -> None:
    """A cursor nested too deep (a 500 and a traceback in the log, once) and bodies past
    --max-body-bytes: each answered with Stytch's error body, the server still serving."""
    auth = (DEFAULT_PROJECT_ID, DEFAULT_SECRET)
    deep = base64.urlsafe_b64encode(b"[" * 50_000).decode()
    args = ["--seed", str(SEED_FILE), "--max-body-bytes", "100000"]
    with emulator_process(*args, cwd=tmp_path) as running:
        search = running.url + "v1/b2b/organizations/search"
        put = running.url + "v1/b2b/rbac/organizations/acme"
        cursor = httpx.post(search, json={"cursor": deep}, auth=auth, timeout=10)
        assert (cursor.status_code, cursor.json()["error_type"]) == (400, "invalid_argument")
        body = b'{"org_policy": {"roles": []}}' + b" " * 100_000
        large = httpx.put(put, content=body, auth=auth, timeout=10)
        assert (large.status_code, large.json()["error_type"]) == (413, "request_too_large")
        assert "larger than 100000 bytes" in large.json()["error_message"]
        assert policy_status(running.url, *auth) == 200
        running.stop()
    assert "Traceback" not in running.stderr + running.stdout
    assert "RecursionError" not in running.stderr


def test_max_body_bytes_must_be_positive(tmp_path: Path) -> None:
    result = run("--seed", str(SEED_FILE), "--max-body-bytes", "0", cwd=tmp_path)
    assert_clean_failure(result, "Invalid value for '--max-body-bytes'")


def test_a_bad_config_file_is_a_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "policysync.toml"
    config.write_text("[limits]\nmax_roles_per_org = 0\n")
    result = run("--port", "0", "--seed", str(SEED_FILE), "--config", str(config), cwd=tmp_path)
    assert_clean_failure(result, str(config), "max_roles_per_org")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_stops_the_emulator_cleanly(tmp_path: Path, sig: signal.Signals) -> None:
    with emulator_process("--seed", str(SEED_FILE), cwd=tmp_path) as running:
        running.proc.send_signal(sig)
        code = running.proc.wait(timeout=10)
        running.stop()
    assert code == 0
    assert "policysync emulator stopped" in running.stderr
    assert "Aborted" not in running.stderr
    assert "Traceback" not in running.stderr


def test_a_seed_breaking_the_configured_limits_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "policysync.toml"
    config.write_text("[limits]\nmax_roles_per_org = 1\n")
    result = run("--seed", str(SEED_FILE), "--config", str(config), cwd=tmp_path)
    assert result.returncode == 1
    assert "more than the limit of 1" in result.stderr
    assert "Traceback" not in result.stderr


def forget(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Make `name` imported afresh (for this test only): out of sys.modules and off its
    package, where `from package import name` would find it first."""
    monkeypatch.delitem(sys.modules, name)
    package, _, child = name.rpartition(".")
    if package in sys.modules:
        monkeypatch.delattr(sys.modules[package], child, raising=False)


def without_server_modules(monkeypatch: pytest.MonkeyPatch, uninstalled: set[str]) -> None:
    """As in an install without the `emulator` extra: the packages `uninstalled` cannot be
    imported, and the emulator's own modules are imported again (command.py excepted)."""
    for name in list(sys.modules):
        if name in uninstalled:
            monkeypatch.setitem(sys.modules, name, None)  # `import name` fails
        elif name.partition(".")[0] in uninstalled or (
            name.startswith("policysync.emulator.") and name != "policysync.emulator.command"
        ):
            forget(monkeypatch, name)


@pytest.mark.parametrize("package", sorted(EXTRA_PACKAGES - {"httptools"}))
def test_without_the_emulator_extra_it_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], package: str
) -> None:
    without_server_modules(monkeypatch, {package})
    code, out, err = clirun.run(["emulator", "--port", "0", "--seed", str(SEED_FILE)], capsys)
    assert code == 1
    assert out == ""
    assert err == (
        "error: `policysync emulator` needs the emulator extra (no module named "
        f"'{package}'): pip install 'policysync[emulator]' (with pipx: pipx install --force "
        "'policysync[emulator] @ <what you installed policysync from>')\n"
    )


def test_another_missing_module_is_not_blamed_on_the_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    without_server_modules(monkeypatch, set())
    monkeypatch.setitem(sys.modules, "policysync.emulator.server", None)
    monkeypatch.delenv("POLICYSYNC_DEBUG", raising=False)
    code, _, err = clirun.run(["emulator", "--port", "0", "--seed", str(SEED_FILE)], capsys)
    assert code == 1
    assert err.startswith("internal error: ModuleNotFoundError: ")
    assert "emulator extra" not in err

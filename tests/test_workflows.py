"""The policy workflows: the reusable ones (`on: workflow_call`: policysync-pr, -drift,
-apply, -rollback) and this repository's thin callers of them (policy-*.yml), run as a
runner runs them (support/workflows.py): each `run:` step for real with bash, against the
emulators, with a fake `gh`; inputs and secrets as a caller passes them.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import jq
import pytest
import yaml
from support import fake_gh
from support.clirun import run as cli_run
from support.gitkit import add_role, commit_all, edit, git
from support.workflows import (
    POLICYSYNC_REPOSITORY,
    POLICYSYNC_SHA,
    PR_NUMBER,
    REPOSITORY,
    ROOT,
    STEP_TIMEOUT,
    VENV,
    WORKFLOWS,
    Artifacts,
    Call,
    Job,
    Runner,
    gh,
    gh_calls,
    github_files,
    load,
    reusable_workflows,
    triggers,
    typed,
)

from policysync.config import Limits
from policysync.emulator.seed import Seed
from policysync.emulator.server import EmulatorThread, build, read_model
from policysync.emulator.store import Store
from policysync.emulator.zenml_app import build as build_zenml
from policysync.emulator.zenml_store import ZenmlSeed, ZenmlStore
from policysync.loader import Source

SEED = Seed.model_validate_json((ROOT / "policies" / "emulator-seed.json").read_text())
PROJECT_ID = "project-test-11111111-2222-4333-8444-555555555555"
SECRET = "secret-test-workflows-d29ya2Zsb3dz"
ZENML_KEY = "ZENPROKEY_test-workflows-a2V5LWZvci13b3JrZmxvd3M"
ENVIRONMENTS = ("policysync-read", "policysync-apply")  # README's, "Setting it up"
# A job's environment with the input `environment` (an environment of the settings):
# policysync-read-NAME or policysync-apply-NAME (README, "Environments").
READ = "${{ inputs.environment && format('policysync-read-{0}', inputs.environment) || 'policysync-read' }}"  # noqa: E501
APPLY = "${{ inputs.environment && format('policysync-apply-{0}', inputs.environment) || 'policysync-apply' }}"  # noqa: E501
PROMOTED = {  # the promotion's jobs: each environment's own
    "${{ format('policysync-apply-{0}', inputs.from) }}",
    "${{ format('policysync-apply-{0}', inputs.to) }}",
}


def of_an_environment(named: Any) -> bool:
    """Whether a job's `environment:` is one of README's: policysync-read or
    policysync-apply, or either for the environment of the settings the inputs name."""
    return named in ENVIRONMENTS or named in (READ, APPLY) or named in PROMOTED


BOT = fake_gh.BOT
CALLERS = {
    "policy-pr.yml": "policysync-pr.yml",
    "policy-drift.yml": "policysync-drift.yml",
    "policy-apply.yml": "policysync-apply.yml",
    "policy-rollback.yml": "policysync-rollback.yml",
}
# The credentials are named per provider (README.md, "Setting it up"); each step that
# reads live state gets both sets, each unless `provider` names the other provider.
STYTCH_CREDENTIALS = ("STYTCH_PROJECT_ID", "STYTCH_SECRET", "STYTCH_BASE_URL")
ZENML_CREDENTIALS = ("ZENML_PRO_API_KEY", "ZENML_PRO_API_URL")
CREDENTIAL_PREFIXES = ("STYTCH_", "ZENML_")


# Fixtures.


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A checkout: the sample policies committed on main."""
    checkout = tmp_path / "checkout"
    shutil.copytree(ROOT / "policies", checkout / "policies")
    git(checkout, "init", "-q", "-b", "main")
    commit_all(checkout, "sample policies")
    return checkout


@pytest.fixture
def gh_state(tmp_path: Path) -> Path:
    state = tmp_path / "gh-state.json"
    unrelated = {
        "id": 1,
        "issue": PR_NUMBER,
        "user": {"login": "alice", "type": "User"},
        "body": "LGTM, but <!-- policysync-plan -->?",
    }
    state.write_text(json.dumps({**fake_gh.initial_state(), "comments": [unrelated], "next_id": 1}))
    return state


@pytest.fixture
def artifacts() -> Artifacts:
    return Artifacts()


@pytest.fixture
def runner(workspace: Path, tmp_path: Path, gh_state: Path, artifacts: Artifacts) -> Runner:
    made = Runner(workspace, tmp_path / "runner", gh_state, artifacts)
    made.hidden = {SECRET, ZENML_KEY}
    return made


@pytest.fixture
def live(runner: Runner) -> Iterator[Store]:
    """The emulator seeded with the demo seed (live differs from the files), and the
    credentials that point at it as README says to keep them: secrets of the two
    environments, none of the repository."""
    store = Store()
    store.load(SEED)
    with EmulatorThread(build(store, PROJECT_ID, SECRET, Limits())) as emulator:
        for name in ENVIRONMENTS:
            runner.environments[name] = credentials(emulator.url)
        yield store


@pytest.fixture
def zenml_live(runner: Runner, workspace: Path) -> Iterator[ZenmlStore]:
    """The ZenML Pro sample instead: examples/zenml/ committed as the checkout, its
    emulator seeded with its seed, and ZenML Pro's credentials in both environments."""
    shutil.rmtree(workspace / "policies")
    shutil.copytree(ROOT / "examples" / "zenml", workspace, dirs_exist_ok=True)
    (workspace / "emulator-seed.json").unlink()
    commit_all(workspace, "the ZenML Pro sample")
    store = ZenmlStore()
    store.load(read_model(ROOT / "examples" / "zenml" / "emulator-seed.json", ZenmlSeed))
    with EmulatorThread(build_zenml(store, ZENML_KEY)) as emulator:
        for name in ENVIRONMENTS:
            runner.environments[name] = {
                "ZENML_PRO_API_KEY": ZENML_KEY,
                "ZENML_PRO_API_URL": emulator.url,
            }
        yield store


def credentials(url: str) -> dict[str, str]:
    return {"STYTCH_PROJECT_ID": PROJECT_ID, "STYTCH_SECRET": SECRET, "STYTCH_BASE_URL": url}


@pytest.fixture
def recorded(runner: Runner, tmp_path: Path) -> Path:
    """`policysync` wrapped, first on PATH: each call's arguments, and which credential
    variables it was given non-empty (never their values), are added to the file this
    returns, then the real command runs."""
    log = tmp_path / "policysync-calls.jsonl"
    wrapper = runner.fakebin / "policysync"
    names = [*STYTCH_CREDENTIALS, *ZENML_CREDENTIALS]
    wrapper.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        f"with open({str(log)!r}, 'a') as log:\n"
        "    given = sorted(k for k in " + repr(names) + " if os.environ.get(k))\n"
        "    log.write(json.dumps({'argv': sys.argv[1:], 'credentials': given}) + '\\n')\n"
        f"real = {str(VENV / 'bin' / 'policysync')!r}\n"
        "os.execv(real, [real, *sys.argv[1:]])\n"
    )
    wrapper.chmod(0o755)
    return log


def calls_of(log: Path, command: str) -> list[dict[str, Any]]:
    lines = log.read_text().splitlines() if log.exists() else []
    return [c for c in map(json.loads, lines) if c["argv"][:1] == [command]]


def push_pr_commit(workspace: Path, role_id: str) -> None:
    """A commit on top of the checkout, as a pull request's merge commit is on its base."""
    edit(workspace / "policies" / "orgs" / "acme.json", lambda d: add_role(d, role_id))
    commit_all(workspace, f"add {role_id}")


def apply_run(runner: Runner, run_id: str, attempt: str = "1", **inputs: Any) -> dict[str, Job]:
    """policy-apply run `run_id` (its plan job, then its apply job), as dispatched with
    `inputs`."""
    runner.run_id, runner.run_attempt = run_id, attempt
    return runner.run(runner.call("policy-apply.yml", inputs))


def journal_runs(*artifacts: dict[str, bytes]) -> set[str]:
    """The policysync runs in journal artifacts (a folder each, beside `.lock`)."""
    return {name.split("/")[0] for files in artifacts for name in files if "/" in name}


def rollback_run(runner: Runner, run_id: str, **inputs: Any) -> Job:
    runner.run_id, runner.run_attempt = run_id, "1"
    return runner.run(runner.call("policy-rollback.yml", inputs))["rollback"]


# The files themselves.

USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)$", re.MULTILINE)
PINNED = re.compile(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}")


@pytest.mark.parametrize("path", github_files(), ids=lambda p: p.name)
def test_actions_are_pinned_to_commits_and_run_scripts_hold_no_expressions(path: Path) -> None:
    source = path.read_text()
    for target, comment in USES.findall(source):
        if target.startswith("./"):
            continue
        assert PINNED.fullmatch(target), f"{path.name}: {target} is not pinned to a commit"
        assert re.fullmatch(r"\s*# v\d+\.\d+\.\d+", comment), f"{target}: no # vX.Y.Z"
    document = load(path)
    jobs = document.get("jobs") or {"action": {"steps": document["runs"]["steps"]}}
    for name, job in jobs.items():
        if "uses" in job:  # a caller: this repository's reusable workflow, no steps
            assert job["uses"].startswith("./.github/workflows/"), f"{path.name}: {name}"
            continue
        for step in job["steps"]:
            assert "${{" not in step.get("run", ""), f"{path.name}: {step} (pass it in env:)"
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False


def test_action_scripts_pass_shellcheck() -> None:
    """actionlint checks the workflows' scripts with ShellCheck; the action's are here."""
    for step in load(ROOT / "action.yml")["runs"]["steps"]:
        if "run" in step:
            checked = subprocess.run(
                [VENV / "bin" / "shellcheck", "--shell=bash", "-"],
                input=step["run"],
                capture_output=True,
                text=True,
                timeout=STEP_TIMEOUT,
                check=False,
            )
            assert checked.returncode == 0, checked.stdout


@pytest.mark.parametrize("path", sorted(WORKFLOWS.glob("*.yml")), ids=lambda p: p.name)
def test_permissions_are_granted_per_job(path: Path) -> None:
    document = load(path)
    assert document["permissions"] == {}
    for name, job in document["jobs"].items():
        assert "contents" in job["permissions"], name
        assert set(job["permissions"].values()) <= {"read", "write"}


def test_ci_runs_make_test_on_pushes_and_pull_requests() -> None:
    document = load(WORKFLOWS / "ci.yml")
    assert {"push", "pull_request"} <= set(document["on"])
    assert [s["run"] for s in document["jobs"]["test"]["steps"] if "run" in s] == ["make test"]


@pytest.mark.parametrize(("caller", "called"), CALLERS.items())
def test_callers_are_thin_and_grant_what_the_called_jobs_need(caller: str, called: str) -> None:
    """The repository's own workflows only call the reusable ones, as a policy repository
    does by reference: one job, `uses:` and `with:`, no steps, no secrets passed (the
    called jobs read their environments'). A called job gets at most its caller's
    permissions, so the caller grants each permission any called job asks for."""
    document = load(WORKFLOWS / caller)
    (job,) = document["jobs"].values()
    assert set(job) <= {"name", "permissions", "uses", "with"}, set(job)
    assert job["uses"] == f"./.github/workflows/{called}"
    rank = {"read": 1, "write": 2}
    needed: dict[str, str] = {}
    for called_job in load(WORKFLOWS / called)["jobs"].values():
        for scope, level in called_job["permissions"].items():
            if rank[level] > rank.get(needed.get(scope, ""), 0):
                needed[scope] = level
    assert job["permissions"] == needed
    assert len((WORKFLOWS / caller).read_text().splitlines()) <= 50


def test_callers_are_triggered_as_documented() -> None:
    pr = triggers(load(WORKFLOWS / "policy-pr.yml"))
    assert pr == {"pull_request": {"paths": ["policies/**", "schemas/**", "policysync.toml"]}}
    drift = triggers(load(WORKFLOWS / "policy-drift.yml"))
    assert set(drift) == {"schedule", "workflow_dispatch"}
    apply = triggers(load(WORKFLOWS / "policy-apply.yml"))
    assert set(apply) == {"workflow_dispatch"}
    for name in ("allow_delete", "allow_delete_in_use", "force"):
        spec = apply["workflow_dispatch"]["inputs"][name]
        assert (spec["type"], spec["default"]) == ("boolean", False)
    rollback = triggers(load(WORKFLOWS / "policy-rollback.yml"))
    assert set(rollback) == {"workflow_dispatch"}
    assert rollback["workflow_dispatch"]["inputs"]["apply_run_id"]["required"] is True


def test_reusable_workflows_are_the_five_and_guarded_as_documented() -> None:
    assert [p.name for p in reusable_workflows()] == [
        "policysync-apply.yml",
        "policysync-drift.yml",
        "policysync-pr.yml",
        "policysync-promote.yml",
        "policysync-rollback.yml",
    ]
    writers = ("policysync-apply.yml", "policysync-rollback.yml", "policysync-promote.yml")
    for name in writers:  # never side by side
        assert load(WORKFLOWS / name)["concurrency"] == {
            "group": "policysync-apply",
            "cancel-in-progress": False,
        }
    apply = load(WORKFLOWS / "policysync-apply.yml")["jobs"]
    assert apply["plan"]["environment"] == READ
    assert apply["apply"]["environment"] == APPLY
    journal = apply["apply"]["steps"][-1]
    assert journal["uses"].startswith("actions/upload-artifact@")
    assert journal["if"] == "always()"  # also when the apply failed
    assert journal["with"]["include-hidden-files"] is True  # .policysync/ is hidden
    assert (
        journal["with"]["name"]
        == "policysync-journal-${{ github.run_id }}-${{ github.run_attempt }}"
    )
    rollback = load(WORKFLOWS / "policysync-rollback.yml")["jobs"]["rollback"]
    assert rollback["environment"] == APPLY
    assert rollback["permissions"] == {"contents": "read", "actions": "read"}
    kept = rollback["steps"][-1]
    assert (kept["uses"].split("@")[0], kept["if"]) == ("actions/upload-artifact", "always()")
    assert kept["with"]["name"] == journal["with"]["name"]  # a rollback can be rolled back
    drift = load(WORKFLOWS / "policysync-drift.yml")["jobs"]["drift"]
    assert drift["environment"] == READ
    assert drift["permissions"]["issues"] == "write"
    pr = load(WORKFLOWS / "policysync-pr.yml")["jobs"]
    assert pr["plan"]["permissions"]["pull-requests"] == "write"


@pytest.mark.parametrize("path", reusable_workflows(), ids=lambda p: p.name)
def test_reusable_workflows_install_policysync_of_their_own_commit(path: Path) -> None:
    """A reusable workflow runs the policysync it was called at: each job checks out
    `job.workflow_repository` at `job.workflow_sha` beside the policy files and installs
    it with its composite action, with the job's Python."""
    for name, job in load(path)["jobs"].items():
        steps = job["steps"]
        names = [s.get("name") for s in steps]
        checkout = steps[names.index("Check out policysync")]
        assert checkout["with"] == {
            "repository": "${{ job.workflow_repository }}",
            "ref": "${{ job.workflow_sha }}",
            "path": ".policysync-action",
            "persist-credentials": False,
        }, name
        install = steps[names.index("Install policysync")]
        assert install["uses"] == "./.policysync-action"
        assert install["with"] == {"python-version": "${{ inputs.python-version }}"}
        assert names.index("Install policysync") > names.index("Check out policysync")
        first = next(
            i for i, s in enumerate(steps) if s.get("uses", "").startswith("actions/checkout@")
        )
        assert steps[first]["with"].get("repository") is None  # the caller's files first


def test_reusable_workflows_take_the_documented_inputs() -> None:
    expected = {
        "policysync-pr.yml": {"policies", "python-version", "provider"},
        "policysync-drift.yml": {
            "policies", "python-version", "parallelism", "provider", "environment", "all-orgs",
        },
        "policysync-apply.yml": {
            "policies", "python-version", "parallelism", "provider", "environment",
            "allow-delete", "allow-delete-in-use", "force",
        },
        "policysync-rollback.yml": {
            "apply-run-id", "journal-run", "orgs", "environment", "python-version",
            "parallelism", "provider",
        },
        "policysync-promote.yml": {
            "from", "to", "policies", "python-version", "parallelism", "provider",
            "allow-delete", "allow-delete-in-use", "force",
        },
    }  # fmt: skip
    for path in reusable_workflows():
        inputs = triggers(load(path))["workflow_call"]["inputs"]
        assert set(inputs) == expected[path.name], path.name
        for name, spec in inputs.items():
            assert spec.get("description"), f"{path.name}: {name}"
        assert "secrets" not in triggers(load(path))["workflow_call"]  # the environments'


def readme_inputs() -> dict[tuple[str, str], str]:
    """README's table of the reusable workflows' inputs: (workflow, input) -> default."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### The reusable workflows' inputs", 1)[1].split("\n#", 1)[0]
    rows: dict[tuple[str, str], str] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[1].startswith("`"):
            for workflow in re.findall(r"[a-z]+", cells[0]):
                rows[(f"policysync-{workflow}.yml", cells[1].strip("`"))] = cells[2]
    return rows


def test_readme_documents_every_input_with_its_default() -> None:
    expected = {}
    for path in reusable_workflows():
        for name, spec in triggers(load(path))["workflow_call"]["inputs"].items():
            default = "required" if spec.get("required") else json.dumps(spec.get("default"))
            expected[(path.name, name)] = default.replace('""', "empty")
    documented = {k: v.strip("`") for k, v in readme_inputs().items()}
    assert documented == expected


SECRET_REFERENCE = re.compile(r"\bsecrets\.(\w+)")


def secrets_named(node: Any) -> set[str]:
    """The secrets a piece of a workflow names anywhere in it (env:, with:, run:, if:)."""
    if isinstance(node, dict):
        return set().union(*(secrets_named(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(secrets_named(v) for v in node))
    return set(SECRET_REFERENCE.findall(node)) if isinstance(node, str) else set()


@pytest.mark.parametrize("path", github_files(), ids=lambda p: p.name)
def test_credentials_are_read_only_in_jobs_of_an_environment(path: Path) -> None:
    """Environment secrets, limited to the default branch, are what keeps the Stytch and
    ZenML Pro credentials from a job that a pull request's branch can change and run: a
    job that names no environment would read them as repository secrets."""
    document = load(path)
    jobs = document.get("jobs") or {"action": document["runs"]}
    for name, job in jobs.items():
        named = {s for s in secrets_named(job) if s.startswith(CREDENTIAL_PREFIXES)}
        if named:
            assert of_an_environment(job.get("environment")), f"{path.name}: job {name}: {named}"
    # The zizmor audit that `make workflows` runs on the same files.
    assert "secrets-outside-env" not in (ROOT / ".github" / "zizmor.yml").read_text()


def test_every_step_given_credentials_is_given_both_providers_unless_provider_says() -> None:
    """Wherever an `env:` (of a job or a step) passes credentials, it passes both
    providers' complete sets, each variable from the secret of its name unless the input
    `provider` names the other provider, in a job of one of the environments; the list
    of those places is pinned, so none goes unnoticed."""
    unless = {
        **dict.fromkeys(STYTCH_CREDENTIALS, "zenml"),
        **dict.fromkeys(ZENML_CREDENTIALS, "stytch"),
    }
    expected = {
        name: f"${{{{ inputs.provider != '{other}' && secrets.{name} || '' }}}}"
        for name, other in unless.items()
    }
    given = []
    for path in sorted(WORKFLOWS.glob("*.yml")):
        for job_name, job in load(path)["jobs"].items():
            places = [(f"job {job_name}", job.get("env", {}))]
            places += [
                (f"job {job_name}, step {s.get('name')}", s.get("env", {}))
                for s in job.get("steps", [])
            ]
            for where, env in places:
                credentials = {k: v for k, v in env.items() if k.startswith(CREDENTIAL_PREFIXES)}
                if not credentials:
                    continue
                assert credentials == expected, f"{path.name}: {where}"
                assert of_an_environment(job.get("environment")), f"{path.name}: {where}"
                given.append((path.name, where))
    assert given == [
        ("policysync-apply.yml", "job plan, step Plan"),
        ("policysync-apply.yml", "job apply, step Apply the saved plan"),
        ("policysync-drift.yml", "job drift, step Detect drift"),
        ("policysync-promote.yml", "job first, step Plan and apply"),
        ("policysync-promote.yml", "job second, step Plan and apply"),
        ("policysync-rollback.yml", "job rollback, step Roll back"),
    ]


@pytest.mark.parametrize("path", [ROOT / "action.yml", ROOT / "README.md"], ids=lambda p: p.name)
def test_examples_in_comments_and_readme_pass_both_providers_credentials(path: Path) -> None:
    """The `env:` examples a user copies (action.yml's header, README's composite action)
    name ZenML Pro's secrets as often as Stytch's."""
    source = path.read_text()
    stytch = len(re.findall(r"secrets\.STYTCH_SECRET\b", source))
    assert stytch > 0
    assert stytch == len(re.findall(r"secrets\.ZENML_PRO_API_KEY\b", source))
    assert stytch == len(re.findall(r"secrets\.ZENML_PRO_API_URL\b", source))


def test_pr_workflow_plans_offline_and_reaches_no_credentials() -> None:
    pr = load(WORKFLOWS / "policysync-pr.yml")
    for name, job in pr["jobs"].items():
        assert "environment" not in job, name
        assert secrets_named(job) == set(), name
    scripts = [s.get("run", "") for job in pr["jobs"].values() for s in job["steps"]]
    runs = [line.strip() for script in scripts for line in script.splitlines()]
    commands = [line for line in runs if line.startswith("policysync ")]
    plan = "policysync plan --against-ref HEAD^1 --format"
    assert commands == [  # the markdown for the comment, the JSON for the escalation label
        'policysync "${args[@]}"',  # validate
        # the policy tests: the JUnit report for the artifact, the annotations for the log
        'policysync test --format junit "${where[@]}" > "$report" 2> /dev/null',
        'policysync test --format github "${where[@]}" > "$log" 2>&1',
        f'{plan} markdown --detailed-exitcode "${{where[@]}}" > "$plan"',
        f'{plan} json "${{where[@]}}" > "$RUNNER_TEMP/policysync-plan.json"',
    ]


def pre_commit_hooks() -> dict[str, dict[str, Any]]:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    return {hook["id"]: hook for hook in hooks}


def test_pre_commit_hook_validates_the_policy_tree() -> None:
    hook = pre_commit_hooks()["policysync-validate"]
    assert hook["entry"] == "policysync validate"
    assert hook["language"] == "python"
    assert hook["pass_filenames"] is False
    files = re.compile(hook["files"])
    assert files.search("policies/orgs/acme.json")
    assert files.search("policies/project.json")
    assert not files.search("README.md")
    assert not files.search("policies/orgs/notes.txt")


def test_pre_commit_fmt_hook_checks_the_staged_policy_files(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hook = pre_commit_hooks()["policysync-fmt"]
    assert hook["language"] == "python"
    assert hook["pass_filenames"] is True
    files = re.compile(hook["files"])
    staged = ["policies/project.json", "policies/orgs/acme.json", "policies/orgs/globex.json"]
    assert all(files.search(name) for name in staged)
    for name in (
        "policies/emulator-seed.json",
        "policies/orgs/.acme.json.tmp.json",
        "policies/orgs/sub/x.json",
        "policies/orgs/notes.txt",
        "README.md",
    ):
        assert not files.search(name), name
    program, *args = hook["entry"].split()
    assert program == "policysync"
    assert cli_run([*args, *staged], capsys)[:2] == (0, "")
    globex = workdir / "policies/orgs/globex.json"
    globex.write_text(json.dumps(json.loads(globex.read_text())))  # one line
    before = globex.read_bytes()
    assert cli_run([*args, *staged], capsys)[:2] == (1, "policies/orgs/globex.json\n")
    assert globex.read_bytes() == before  # the hook writes nothing


# The runner itself: inputs and secrets as GitHub passes them.


def test_a_call_passes_typed_inputs_and_no_secrets(runner: Runner) -> None:
    runner.secrets = {"STYTCH_SECRET": "a repository secret"}
    call = runner.call("policy-apply.yml", {"allow_delete": True})
    assert call == Call(
        "policysync-apply.yml",
        {
            "policies": "",
            "python-version": "3.12",
            "parallelism": 16,
            "provider": "stytch",
            "environment": "",
            "allow-delete": True,
            "allow-delete-in-use": False,
            "force": False,
        },
        {},  # the caller passes none: the called jobs read their environments'
        {"contents": "read"},
    )
    with pytest.raises(AssertionError, match="the input allow_delete is a boolean"):
        runner.call("policy-apply.yml", {"allow_delete": "true"})
    with pytest.raises(AssertionError, match="the input apply_run_id is required"):
        runner.call("policy-rollback.yml", {})


def test_a_called_job_reads_its_environments_secrets_not_the_repositorys(
    runner: Runner, recorded: Path, live: Store
) -> None:
    """The repository's secrets reach a called workflow only when its caller passes them
    (`secrets: inherit`); ours pass none, and the environment's are what the jobs read
    (and win over any passed)."""
    environment = runner.environments["policysync-read"]
    runner.environments["policysync-read"] = {}
    runner.secrets = {"STYTCH_SECRET": "secret-test-the-repositorys-cmVwbw"}
    runner.hidden.add(runner.secrets["STYTCH_SECRET"])
    call = runner.call("policy-apply.yml")
    assert not runner.job(call, "plan").ok
    assert calls_of(recorded, "plan")[-1]["credentials"] == []
    inherited = Call(call.workflow, call.inputs, dict(runner.secrets), call.permissions)
    assert not runner.job(inherited, "plan").ok
    assert calls_of(recorded, "plan")[-1]["credentials"] == ["STYTCH_SECRET"]
    runner.environments["policysync-read"] = environment
    plan = runner.job(inherited, "plan")
    assert plan.ok, plan.log  # the environment's secret, not the repository's
    assert calls_of(recorded, "plan")[-1]["credentials"] == sorted(STYTCH_CREDENTIALS)


def live_url(runner: Runner) -> str:
    return runner.environments["policysync-apply"]["STYTCH_BASE_URL"]


# policysync-pr.yml, through policy-pr.yml


def test_pr_validate_annotates_the_broken_line(runner: Runner, workspace: Path) -> None:
    pr = runner.call("policy-pr.yml")
    job = runner.job(pr, "validate")
    assert job.ok, job.log

    stark = workspace / "policies" / "orgs" / "stark-industries.json"
    stark.write_text(stark.read_text().replace('"approve"', '"aprove"', 1))
    job = runner.job(pr, "validate")
    assert not job.ok
    assert re.search(
        r"^::error file=policies/orgs/stark-industries\.json,line=\d+,col=\d+,"
        r"title=[^:]*::.*aprove",
        job.steps["Validate"].stdout,
        re.MULTILINE,
    ), job.log


def test_pr_validate_runs_the_policy_tests_and_uploads_their_junit_report(
    runner: Runner, artifacts: Artifacts
) -> None:
    job = runner.job(runner.call("policy-pr.yml"), "validate")
    assert job.ok, job.log
    assert job.steps["test"].stdout.splitlines()[-1] == ("4 tests, 11 assertions: 0 failed")
    assert "### policysync test\n\n4 tests, 11 assertions: 0 failed\n" in job.summary
    [upload] = artifacts.uses_of("actions/upload-artifact")
    assert upload["name"] == "policysync-test-report"
    [report] = artifacts.stored["policysync-test-report"].values()
    root = ElementTree.fromstring(report)
    assert (root.tag, root.get("tests"), root.get("failures")) == ("testsuites", "4", "0")


def test_pr_validate_fails_on_a_failing_assertion_annotated_at_its_line(
    runner: Runner, workspace: Path, artifacts: Artifacts
) -> None:
    tests = workspace / "policies" / "tests" / "finance.json"
    # invoice approvers read invoices: a test denying it fails
    denied = {"resource_id": "invoices", "action": "read"}
    edit(tests, lambda d: d["tests"][0]["deny"].append(denied))
    job = runner.job(runner.call("policy-pr.yml"), "validate")
    assert not job.ok
    step = job.steps["test"]
    assert (step.ran, step.code) == (True, 1)
    line, col = Source("", tests.read_text(), 32).place("/tests/0/deny/2")
    assert re.search(
        rf"^::error file=policies/tests/finance\.json,line={line},col={col},title=policysync test::"
        r".*deny invoices:read: allowed: "
        r"role invoice-approver \(policies/templates/finance\.json\)",
        step.stdout,
        re.MULTILINE,
    ), job.log
    assert "**4 tests, 12 assertions: 1 failed**" in job.summary
    [report] = artifacts.stored["policysync-test-report"].values()  # uploaded all the same
    failure = ElementTree.fromstring(report).find(".//failure")
    assert failure is not None
    assert "deny invoices:read" in (failure.text or "")


def test_pr_plan_is_the_offline_plan_and_keeps_one_sticky_comment(
    runner: Runner, workspace: Path, gh_state: Path, live: Store
) -> None:
    # Even where credentials were left as repository secrets (an older setup), the pull
    # request's plan is made from git alone: its job names no secret.
    runner.secrets = runner.environments["policysync-read"]
    push_pr_commit(workspace, "first-role")
    pr = runner.call("policy-pr.yml")
    job = runner.job(pr, "plan")
    assert job.ok, job.log
    assert job.steps["plan"].outputs["exit-code"] == "2"
    assert "policysync plan (offline)" in job.summary
    assert (
        "Made from git alone, without Stytch credentials: it assumes live Stytch holds"
        in job.summary
    )
    # Only this commit's role: the base branch plays live, not the emulator (which
    # differs from the files in four organizations).
    assert "**Plan: 1 to add, 0 to change, 0 to destroy, in 1 of 7 organizations.**" in job.summary
    assert "+ role first-role" in job.summary
    [post] = gh_calls(gh_state, mutating=True)
    assert post[:4] == [
        "api",
        "--method",
        "POST",
        f"repos/{REPOSITORY}/issues/{PR_NUMBER}/comments",
    ]
    comments = gh(gh_state)["comments"]
    assert len(comments) == 2  # the unrelated one, and the plan
    assert comments[1]["body"].startswith("<!-- policysync-plan -->\n")
    assert comments[1]["body"] == Path(job.steps["plan"].outputs["body"]).read_text()

    push_pr_commit(workspace, "second-role")  # a later push: the same comment, updated
    job = runner.job(pr, "plan")
    assert job.ok, job.log
    _, patch = gh_calls(gh_state, mutating=True)
    assert patch[:4] == ["api", "--method", "PATCH", f"repos/{REPOSITORY}/issues/comments/2"]
    comments = gh(gh_state)["comments"]
    assert [c["id"] for c in comments] == [1, 2]
    assert "+ role second-role" in comments[1]["body"]
    assert comments[0]["body"] == "LGTM, but <!-- policysync-plan -->?"


ESCALATION = "policysync-escalation"


def test_pr_plan_labels_a_pull_request_while_its_plan_has_escalations(
    runner: Runner, workspace: Path, gh_state: Path
) -> None:
    pr = runner.call("policy-pr.yml")
    labels = f"repos/{REPOSITORY}/issues/{PR_NUMBER}/labels"
    edit(workspace / "policies" / "orgs" / "acme.json", lambda d: add_role(d, "boss", "*"))
    commit_all(workspace, "a role with every action on invoices")
    job = runner.job(pr, "plan")
    assert job.ok, job.log
    assert job.steps["plan"].outputs["escalations"] == "1"
    assert "**Escalations: grants that widen access (1)**" in job.summary
    assert "! role boss in acme" in gh(gh_state)["comments"][-1]["body"]
    create, add = gh_calls(gh_state, mutating=True)[1:]
    assert create[:4] == ["label", "create", ESCALATION, "--force"]
    assert add == ["api", "--method", "POST", labels, "-f", f"labels[]={ESCALATION}"]
    assert gh(gh_state)["issue_labels"] == {str(PR_NUMBER): [ESCALATION]}

    job = runner.job(pr, "plan")  # the same plan again: the label stays, untouched
    assert job.ok, job.log
    assert len(gh_calls(gh_state, mutating=True)) == 4  # the comment's POST and PATCH
    assert f"keeps the label {ESCALATION}" in job.log

    push_pr_commit(workspace, "reader")  # a push whose plan widens nothing
    job = runner.job(pr, "plan")
    assert job.ok, job.log
    assert job.steps["plan"].outputs["escalations"] == "0"
    assert "Escalations" not in job.summary
    assert gh_calls(gh_state, mutating=True)[-1] == [
        "api",
        "--method",
        "DELETE",
        f"{labels}/{ESCALATION}",
    ]
    assert gh(gh_state)["issue_labels"] == {str(PR_NUMBER): []}
    runner.job(pr, "plan")
    assert gh_calls(gh_state, mutating=True)[-1][2] == "PATCH"  # nothing to remove


def test_pr_plan_that_cannot_label_warns(runner: Runner, workspace: Path, gh_state: Path) -> None:
    edit(workspace / "policies" / "orgs" / "acme.json", lambda d: add_role(d, "boss", "*"))
    commit_all(workspace, "a role with every action on invoices")
    state = gh(gh_state)
    state["read_only"] = True  # a pull request from a fork: read-only token
    gh_state.write_text(json.dumps(state))
    job = runner.job(runner.call("policy-pr.yml"), "plan")
    assert job.ok, job.log
    assert (
        f"::warning title=policysync plan::could not label the pull request {ESCALATION}; "
        "the plan lists its 1 escalations" in job.log
    )
    assert gh(gh_state)["issue_labels"] == {str(PR_NUMBER): []}


def test_pr_plan_that_fails_leaves_the_label_alone(
    runner: Runner, workspace: Path, gh_state: Path
) -> None:
    state = gh(gh_state)
    state["labels"], state["issue_labels"] = [ESCALATION], {str(PR_NUMBER): [ESCALATION]}
    gh_state.write_text(json.dumps(state))
    stark = workspace / "policies" / "orgs" / "stark-industries.json"
    stark.write_text(stark.read_text().replace('"approve"', '"aprove"', 1))
    commit_all(workspace, "a typo")
    job = runner.job(runner.call("policy-pr.yml"), "plan")
    assert not job.ok
    assert not job.steps["Escalation label"].ran
    assert gh(gh_state)["issue_labels"] == {str(PR_NUMBER): [ESCALATION]}


SPOOFS = [
    # Someone writes the marker first in a comment of their own...
    {"login": "mallory", "type": "User"},
    # ...or another app's bot does: only this workflow's bot writes the plan comment.
    {"login": "some-app[bot]", "type": "Bot"},
]


def test_pr_plan_comment_is_never_one_written_by_someone_else(
    runner: Runner, workspace: Path, gh_state: Path
) -> None:
    state = gh(gh_state)
    forged = "<!-- policysync-plan -->\n### policysync plan\n\nNo changes. Approve away."
    for number, user in enumerate(SPOOFS, start=2):
        state["comments"].append({"id": number, "issue": PR_NUMBER, "user": user, "body": forged})
    state["next_id"] = 1 + len(SPOOFS)
    gh_state.write_text(json.dumps(state))

    pr = runner.call("policy-pr.yml")
    push_pr_commit(workspace, "first-role")
    job = runner.job(pr, "plan")
    assert job.ok, job.log
    [post] = gh_calls(gh_state, mutating=True)  # a comment of its own, not a PATCH
    assert post[:3] == ["api", "--method", "POST"]
    comments = gh(gh_state)["comments"]
    assert [c["body"] for c in comments[1:-1]] == [forged] * len(SPOOFS)  # left alone
    assert (comments[-1]["id"], comments[-1]["user"]) == (len(SPOOFS) + 2, BOT)
    assert "+ role first-role" in comments[-1]["body"]

    push_pr_commit(workspace, "second-role")  # the next push updates the bot's comment
    job = runner.job(pr, "plan")
    assert job.ok, job.log
    _, patch = gh_calls(gh_state, mutating=True)
    assert patch[3] == f"repos/{REPOSITORY}/issues/comments/{len(SPOOFS) + 2}"
    comments = gh(gh_state)["comments"]
    assert [c["body"] for c in comments[1:-1]] == [forged] * len(SPOOFS)
    assert "+ role second-role" in comments[-1]["body"]


def test_pr_plan_comment_filter_matches_the_marker_and_the_bot() -> None:
    """The `--jq` filter of the sticky comment step, on its own."""
    steps = load(WORKFLOWS / "policysync-pr.yml")["jobs"]["plan"]["steps"]
    (step,) = [s for s in steps if s.get("name") == "Sticky pull-request comment"]
    marker = "<!-- policysync-plan -->"
    comments = [
        {"id": 1, "user": {"login": "mallory", "type": "User"}, "body": f"{marker}\nforged"},
        {"id": 2, "user": {"login": "some-app[bot]", "type": "Bot"}, "body": f"{marker}\nx"},
        {"id": 3, "user": {"login": "github-actions[bot]", "type": "User"}, "body": marker},
        {"id": 4, "user": BOT, "body": f"quoting {marker}"},
        {"id": 5, "user": BOT, "body": f"{marker}\nthe plan"},
        {"id": 6, "user": {"login": "mallory", "type": "User"}, "body": f"{marker}\nlater"},
    ]
    assert jq.compile(step["env"]["MINE"]).input_value(comments).all() == [5]
    assert jq.compile(step["env"]["MINE"]).input_value(comments[:4]).all() == []


def test_pr_plan_with_a_read_only_token_warns_and_keeps_the_summary(
    runner: Runner, workspace: Path, gh_state: Path
) -> None:
    push_pr_commit(workspace, "offline-role")
    state = gh(gh_state)
    state["read_only"] = True  # a pull request from a fork: read-only token
    gh_state.write_text(json.dumps(state))
    job = runner.job(runner.call("policy-pr.yml"), "plan")
    assert job.ok, job.log  # the comment could not be made: a warning, not a failure
    assert "policysync plan (offline)" in job.summary
    assert "**Plan: 1 to add, 0 to change, 0 to destroy, in 1 of 7 organizations.**" in job.summary
    assert "+ role offline-role" in job.summary
    assert "::warning title=policysync plan::could not comment" in job.log
    assert len(gh(gh_state)["comments"]) == 1


def test_pr_plan_that_fails_fails_the_job_but_still_comments(
    runner: Runner, workspace: Path, gh_state: Path
) -> None:
    stark = workspace / "policies" / "orgs" / "stark-industries.json"
    stark.write_text(stark.read_text().replace('"approve"', '"aprove"', 1))
    commit_all(workspace, "a typo")
    job = runner.job(runner.call("policy-pr.yml"), "plan")
    assert not job.ok
    assert job.steps["plan"].outputs["exit-code"] == "1"
    assert "The plan failed (exit code 1)" in job.summary
    assert job.steps["Sticky pull-request comment"].ran
    assert "The plan failed" in gh(gh_state)["comments"][-1]["body"]


def test_pr_input_policies_names_the_folder(
    runner: Runner, workspace: Path, recorded: Path
) -> None:
    git(workspace, "mv", "policies", "rbac")
    commit_all(workspace, "the policies in rbac/")
    push_pr_commit_in(workspace / "rbac", "moved-role")
    assert not runner.job("policysync-pr.yml", "validate").ok  # policies/ is gone
    validate = runner.job("policysync-pr.yml", "validate", inputs={"policies": "rbac"})
    assert validate.ok, validate.log
    plan = runner.job("policysync-pr.yml", "plan", inputs={"policies": "rbac"})
    assert plan.ok, plan.log
    assert "+ role moved-role" in plan.summary
    assert calls_of(recorded, "plan")[-1]["argv"][-2:] == ["--policies", "rbac"]
    assert calls_of(recorded, "validate")[-1]["argv"] == [
        "validate",
        "--format",
        "github",
        "--policies",
        "rbac",
    ]


def push_pr_commit_in(policies: Path, role_id: str) -> None:
    edit(policies / "orgs" / "acme.json", lambda d: add_role(d, role_id))
    commit_all(policies.parent, f"add {role_id}")


@pytest.mark.parametrize(
    ("provider", "wording"),
    [
        ("zenml", "without ZenML Pro credentials: it assumes live ZenML Pro holds"),
        ("", "without credentials: it assumes the live roles are"),
    ],
)
def test_pr_input_provider_names_the_provider(
    runner: Runner, workspace: Path, provider: str, wording: str
) -> None:
    push_pr_commit(workspace, "named-role")
    job = runner.job("policysync-pr.yml", "plan", inputs={"provider": provider})
    assert job.ok, job.log
    assert f"Made from git alone, {wording} the\nbase branch's files." in job.summary


@pytest.mark.parametrize("workflow", [p.name for p in reusable_workflows()])
def test_an_unknown_provider_stops_every_workflow_first(
    runner: Runner, recorded: Path, workflow: str
) -> None:
    first = next(iter(load(WORKFLOWS / workflow)["jobs"]))
    inputs: dict[str, Any] = {"provider": "Stytch Pro"}
    if workflow == "policysync-rollback.yml":
        inputs["apply-run-id"] = "4242"
    job = runner.job(workflow, first, inputs=inputs)
    assert not job.ok
    assert "the input provider must be stytch, zenml or empty" in job.log
    ran = [name for name, step in job.steps.items() if step.ran]
    kept = "Keep the rollback's own journal"  # if: always(): it keeps nothing here
    assert ran in (["Check the inputs"], ["Check the inputs", kept])
    assert not recorded.exists()  # policysync never ran


# policysync-drift.yml, through policy-drift.yml


def test_drift_opens_updates_and_closes_one_issue(
    runner: Runner, workspace: Path, gh_state: Path, live: Store
) -> None:
    drift = runner.call("policy-drift.yml")
    job = runner.job(drift, "drift")
    assert job.ok, job.log  # drift is reported by the issue, not by a failed job
    assert job.steps["drift"].outputs["drift"] == "true"
    assert job.steps["drift"].outputs["exit-code"] == "2"
    assert "**Drift: 4 of 7 organizations drifted" in job.summary
    assert "+ role legacy-admin                   (added live)" in job.summary
    assert "::warning title=policysync drift::" in job.log
    assert (job.temp / "policysync-drift.json").is_file()  # --report
    [label, create] = gh_calls(gh_state, mutating=True)
    assert label[:3] == ["label", "create", "policysync-drift"]
    assert create[:2] == ["issue", "create"]
    [issue] = gh(gh_state)["issues"]
    assert issue["labels"] == ["policysync-drift"]
    assert issue["body"].startswith("<!-- policysync-drift -->\nLive Stytch no longer matches")
    assert "+ role legacy-admin" in issue["body"]
    assert "/acme/policies/actions/runs/4242" in issue["body"]

    job = runner.job(drift, "drift")  # still drifted: the same issue, updated
    assert job.ok, job.log
    body = str(job.temp / "policysync-drift-issue.md")
    assert gh_calls(gh_state, mutating=True)[2] == ["issue", "edit", "100", "--body-file", body]
    assert len(gh(gh_state)["issues"]) == 1

    fixed = subprocess.run(
        [
            VENV / "bin" / "policysync",
            "apply",
            "--auto-approve",
            "--allow-delete",
            "--allow-delete-in-use",
        ],
        cwd=workspace,
        env={
            "PATH": runner.path,
            "HOME": str(runner.scratch / "home"),
            **runner.environments["policysync-apply"],
        },
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT,
        check=False,
    )
    assert fixed.returncode == 0, fixed.stderr
    job = runner.job(drift, "drift")  # drift gone: the issue is closed
    assert job.ok, job.log
    assert job.steps["drift"].outputs["drift"] == "false"
    assert "No drift." in job.summary
    assert gh_calls(gh_state, mutating=True)[3][:5] == [
        "issue",
        "close",
        "100",
        "--reason",
        "completed",
    ]
    [issue] = gh(gh_state)["issues"]
    assert issue["state"] == "closed"
    assert "No drift any more" in issue["comments"][0]

    calls = len(gh_calls(gh_state))
    job = runner.job(drift, "drift")  # nothing to do: one look, no change
    assert job.ok, job.log
    assert len(gh_calls(gh_state)) == calls + 1
    assert len(gh_calls(gh_state, mutating=True)) == 4


def test_drift_that_fails_fails_the_job_and_leaves_the_issue_alone(
    runner: Runner, gh_state: Path, live: Store
) -> None:
    runner.environments["policysync-read"]["STYTCH_SECRET"] = "secret-test-wrong-d3Jvbmc"
    job = runner.job(runner.call("policy-drift.yml"), "drift")
    assert not job.ok
    assert job.steps["drift"].outputs["exit-code"] == "1"
    assert "::error title=policysync drift::drift detection failed (exit code 1)" in job.log
    assert not job.steps["Open, update or close the drift issue"].condition
    assert gh_calls(gh_state) == []


def test_drift_inputs_reach_policysync(
    runner: Runner, gh_state: Path, recorded: Path, live: Store
) -> None:
    inputs = {"parallelism": 3, "all-orgs": True, "provider": ""}
    job = runner.job("policysync-drift.yml", "drift", inputs=inputs)
    assert job.ok, job.log
    [call] = calls_of(recorded, "drift")
    assert call["argv"][-3:] == ["--parallelism", "3", "--all-orgs"]
    assert call["credentials"] == sorted(STYTCH_CREDENTIALS)  # ZenML Pro's are not set
    [issue] = gh(gh_state)["issues"]
    assert "\nThe live roles no longer match the policy files of `main`" in issue["body"]

    job = runner.job("policysync-drift.yml", "drift", inputs={})  # the defaults
    assert job.ok, job.log
    assert calls_of(recorded, "drift")[-1]["argv"][-2:] == ["--parallelism", "16"]


# policysync-apply.yml, through policy-apply.yml


def test_apply_applies_the_saved_plan_and_keeps_the_journal(
    runner: Runner, workspace: Path, artifacts: Artifacts, live: Store
) -> None:
    call = runner.call("policy-apply.yml", {"allow_delete": False})
    plan = runner.job(call, "plan")
    assert plan.ok, plan.log
    assert plan.outputs == {"changes": "true"}
    assert "**Plan: 2 to add, 2 to change, 1 to destroy, in 4 of 7 organizations.**" in plan.summary
    assert PROJECT_ID.encode() in artifacts.stored["policysync-plan"]["policysync-plan.json"]

    # Without allow_delete the saved plan (it deletes a role) is refused before any write.
    refused = runner.job(call, "apply", needs={"plan": plan})
    assert refused.ran
    assert not refused.ok
    assert "**Apply failed (exit code 1).**" in refused.summary
    assert "--allow-delete" in refused.summary
    assert refused.steps["Upload the journal"].condition  # uploaded even so

    # With allow_delete alone too: the role it deletes is held by members.
    runner.run_attempt = "2"
    held = runner.job(
        runner.call("policy-apply.yml", {"allow_delete": True}), "apply", needs={"plan": plan}
    )
    assert not held.ok
    assert "the plan deletes 1 role in use; nothing was written" in held.summary
    assert "--allow-delete-in-use" in held.summary

    runner.run_attempt = "3"
    allowed = runner.call("policy-apply.yml", {"allow_delete": True, "allow_delete_in_use": True})
    applied = runner.job(allowed, "apply", needs={"plan": plan})
    assert applied.ok, applied.log
    assert applied.steps["apply"].outputs["exit-code"] == "0"
    assert "**Apply: 4 applied, 3 unchanged, 0 stale, 0 failed" in applied.summary
    journal = artifacts.runs["4242"]["policysync-journal-4242-3"]
    [run] = journal_runs(journal)
    assert f"{run}/run.json" in journal
    assert len(journal) == 6  # run.json and the four organizations applied; and .lock
    assert ".lock" in journal  # the journal folder's lock (runlock.py), empty when free
    assert (workspace / ".policysync" / "journal" / run / "run.json").is_file()

    # Each job installed the policysync of the commit the workflow was called at.
    checkouts = artifacts.uses_of("actions/checkout")
    ours = {
        "repository": POLICYSYNC_REPOSITORY,
        "ref": POLICYSYNC_SHA,
        "path": ".policysync-action",
        "persist-credentials": False,
    }
    assert checkouts == [{"persist-credentials": False}, ours] * 4  # plan, apply thrice
    assert artifacts.uses_of("./.policysync-action") == [{"python-version": "3.12"}] * 4

    again = runner.job(allowed, "plan")  # live now matches: nothing to approve
    assert again.ok, again.log
    assert again.outputs == {"changes": "false"}
    assert "No changes." in again.summary
    assert not runner.job(allowed, "apply", needs={"plan": again}).ran


def test_apply_job_waits_for_a_plan_that_succeeded(runner: Runner, live: Store) -> None:
    runner.environments["policysync-read"]["STYTCH_SECRET"] = "secret-test-wrong-d3Jvbmc"
    jobs = apply_run(runner, "4242", allow_delete=True, allow_delete_in_use=True)
    assert jobs["plan"].result == "failure"
    assert jobs["apply"].result == "skipped"


def guard_on_every_tree(workspace: Path) -> None:
    """apply's "too much change" guard from the first organization on (by default it
    starts at 10 of them): the sample plan changes 4 of 7, more than 30%."""
    (workspace / "policysync.toml").write_text("[apply]\nguard_min_organizations = 1\n")
    commit_all(workspace, "guard every tree")


def test_apply_input_force_passes_the_too_much_change_guard(
    runner: Runner, workspace: Path, live: Store
) -> None:
    """The onboarding of many organizations at once: refused after approval without
    `force`, applied with it."""
    guard_on_every_tree(workspace)
    before = live.dump()
    refused = apply_run(runner, "4242", allow_delete=True, allow_delete_in_use=True)["apply"]
    assert refused.ran
    assert not refused.ok
    assert "--force" in refused.summary
    assert live.dump() == before  # the guard stops it before any write

    forced = apply_run(runner, "4243", allow_delete=True, allow_delete_in_use=True, force=True)[
        "apply"
    ]
    assert forced.ok, forced.log
    assert "**Apply: 4 applied, 3 unchanged, 0 stale, 0 failed" in forced.summary
    assert live.dump() != before


def test_apply_inputs_reach_the_plan_and_the_apply(
    runner: Runner, workspace: Path, recorded: Path, live: Store
) -> None:
    git(workspace, "mv", "policies", "rbac")
    commit_all(workspace, "the policies in rbac/")
    inputs = {
        "policies": "rbac",
        "parallelism": 2,
        "allow-delete": True,
        "allow-delete-in-use": True,
        "force": True,
    }
    plan = runner.job("policysync-apply.yml", "plan", inputs=inputs)
    assert plan.ok, plan.log
    applied = runner.job("policysync-apply.yml", "apply", inputs=inputs, needs={"plan": plan})
    assert applied.ok, applied.log
    [planned] = calls_of(recorded, "plan")
    assert planned["argv"][-4:] == ["--parallelism", "2", "--policies", "rbac"]
    [apply] = calls_of(recorded, "apply")
    assert apply["argv"][-7:] == [
        "--parallelism",
        "2",
        "--policies",
        "rbac",
        "--allow-delete",
        "--allow-delete-in-use",
        "--force",
    ]
    assert planned["credentials"] == apply["credentials"] == sorted(STYTCH_CREDENTIALS)


def test_apply_input_provider_passes_only_that_providers_credentials(
    runner: Runner, recorded: Path, live: Store
) -> None:
    everything = {**credentials(live_url(runner)), "ZENML_PRO_API_KEY": ZENML_KEY}
    runner.environments["policysync-read"] = dict(everything)
    for run, (provider, given) in enumerate(
        [("stytch", STYTCH_CREDENTIALS), ("", (*STYTCH_CREDENTIALS, "ZENML_PRO_API_KEY"))]
    ):
        runner.run_id = str(5000 + run)
        plan = runner.job("policysync-apply.yml", "plan", inputs={"provider": provider})
        assert plan.ok, plan.log
        assert calls_of(recorded, "plan")[-1]["credentials"] == sorted(given)
    # Stytch's credentials withheld from a Stytch tree: policysync says they are missing.
    plan = runner.job("policysync-apply.yml", "plan", inputs={"provider": "zenml"})
    assert not plan.ok
    assert calls_of(recorded, "plan")[-1]["credentials"] == ["ZENML_PRO_API_KEY"]
    assert "STYTCH_PROJECT_ID" in plan.log


# policysync-rollback.yml, through policy-rollback.yml


def test_rollback_puts_back_what_an_apply_run_replaced_and_can_be_undone(
    runner: Runner, workspace: Path, artifacts: Artifacts, live: Store
) -> None:
    before = live.dump()
    applied = apply_run(runner, "4242", allow_delete=True, allow_delete_in_use=True)["apply"]
    assert applied.ok, applied.log
    after = live.dump()
    assert after != before

    job = rollback_run(runner, "4300", apply_run_id="4242")
    assert job.ok, job.log
    assert live.dump() == before
    [download] = [d for d in artifacts.uses_of("actions/download-artifact") if "pattern" in d]
    assert download == {
        "pattern": "policysync-journal-4242-*",
        "path": f"{job.temp}/policysync-artifacts",
        "run-id": "4242",
        "github-token": "ghs_fake-token-for-tests",
    }
    [applied_run] = journal_runs(artifacts.runs["4242"]["policysync-journal-4242-1"])
    assert f"### policysync rollback {applied_run} (from run 4242)" in job.summary
    assert "**Rollback: 4 applied, 0 unchanged, 0 stale, 0 failed" in job.summary
    # The rollback's own journal, and only it: a rollback can be rolled back in turn.
    own = artifacts.runs["4300"]["policysync-journal-4300-1"]
    [rollback] = journal_runs(own)
    assert rollback != applied_run
    assert f"{rollback}/run.json" in own

    undone = rollback_run(runner, "4301", apply_run_id="4300")
    assert undone.ok, undone.log
    assert live.dump() == after


@pytest.mark.parametrize("only_newest", [False, True])
def test_rollback_undoes_every_attempt_newest_first_or_the_run_named(
    runner: Runner, workspace: Path, artifacts: Artifacts, live: Store, only_newest: bool
) -> None:
    """A re-run apply leaves one journal artifact per attempt: the newest run is undone
    first (undone oldest first, the newer run's writes would make the older one stale,
    and the rollback would stop there); `journal-run` undoes one run alone."""
    before = live.dump()
    first = apply_run(runner, "4242", "1", allow_delete=True, allow_delete_in_use=True)["apply"]
    assert first.ok, first.log
    middle = live.dump()
    push_pr_commit(workspace, "second-attempt-role")  # what attempt 2 applies on top
    second = apply_run(runner, "4242", "2", allow_delete=True, allow_delete_in_use=True)["apply"]
    assert second.ok, second.log
    assert live.dump() != middle
    journal = artifacts.runs["4242"]
    # The attempts' order, not the run ids' (two runs of one second sort at random).
    [older] = journal_runs(journal["policysync-journal-4242-1"])
    [newer] = journal_runs(journal["policysync-journal-4242-2"])

    inputs = {"apply_run_id": "4242", "journal_run": newer if only_newest else ""}
    job = rollback_run(runner, "4300", **inputs)
    assert job.ok, job.log
    if only_newest:
        assert live.dump() == middle
        assert f"### policysync rollback {older}" not in job.summary
    else:
        assert live.dump() == before
        summary = job.summary
        assert summary.index(f"rollback {newer} (from") < summary.index(f"rollback {older} (from")


@pytest.mark.parametrize(
    ("inputs", "error"),
    [
        ({"apply_run_id": "42; rm -rf /"}, "the input apply-run-id must be a workflow run's id"),
        ({"apply_run_id": "4242", "journal_run": "../x"}, "the input journal-run must be"),
        ({"apply_run_id": "4242", "orgs": "acme *"}, "the input orgs must be"),
        ({"apply_run_id": "777"}, "no journal in the artifacts of run 777"),
        ({"apply_run_id": "4242", "journal_run": "20260101T000000Z-abcdef"}, "not in the journal"),
    ],
)  # fmt: skip
def test_rollback_refuses_what_it_cannot_roll_back(
    runner: Runner,
    recorded: Path,
    artifacts: Artifacts,
    live: Store,
    inputs: dict[str, str],
    error: str,
) -> None:
    assert apply_run(runner, "4242", allow_delete=True, allow_delete_in_use=True)["apply"].ok
    before = live.dump()
    job = rollback_run(runner, "4300", **inputs)
    assert not job.ok
    assert error in job.log
    assert calls_of(recorded, "rollback") == []
    assert live.dump() == before
    assert "4300" not in artifacts.runs


def test_rollback_inputs_reach_policysync(
    runner: Runner, recorded: Path, artifacts: Artifacts, live: Store
) -> None:
    assert apply_run(runner, "4242", allow_delete=True, allow_delete_in_use=True)["apply"].ok
    acme = "organization-test-07971b06-ac8b-4cdb-9c15-63b17e653931"
    job = rollback_run(runner, "4300", apply_run_id="4242", orgs=f"{acme}")
    assert job.ok, job.log
    [call] = calls_of(recorded, "rollback")
    assert call["argv"][2:] == [
        "--auto-approve",
        "--format",
        "markdown",
        "--journal",
        ".policysync/journal",
        "--parallelism",
        "16",
        "--org",
        acme,
    ]
    assert call["credentials"] == sorted(STYTCH_CREDENTIALS)


# ZenML Pro, end to end: provider zenml.


def zenml_roles(store: ZenmlStore) -> dict[str, list[tuple[str, str, str]]]:
    """The custom roles of each organization: (level, name, description), and who holds
    them (ids change when a role is made again)."""
    roles: dict[str, list[tuple[str, str, str]]] = {}
    for organization in store.organizations():
        found = []
        for role in store.roles(organization["id"]):
            if not role.system_managed:
                holders = sorted(str(a) for a in store.assignments(role.id))
                found.append((role.level, role.name, json.dumps([role.description, holders])))
        roles[organization["name"]] = sorted(found)
    return roles


def test_zenml_apply_and_rollback_through_the_workflows(
    runner: Runner, recorded: Path, zenml_live: ZenmlStore
) -> None:
    before = zenml_roles(zenml_live)
    jobs = apply_run(
        runner, "4242", allow_delete=True, allow_delete_in_use=True
    )  # the callers say provider stytch
    assert jobs["plan"].result == "failure"  # ZenML Pro's credentials are withheld
    assert calls_of(recorded, "plan")[-1]["credentials"] == []

    inputs = {"provider": "zenml", "allow-delete": True, "allow-delete-in-use": True}
    plan = runner.job("policysync-apply.yml", "plan", inputs=inputs)
    assert plan.ok, plan.log
    assert "workspace:Pipeline Reviewers" in plan.summary
    applied = runner.job("policysync-apply.yml", "apply", inputs=inputs, needs={"plan": plan})
    assert applied.ok, applied.log
    assert calls_of(recorded, "apply")[-1]["credentials"] == sorted(ZENML_CREDENTIALS)
    assert zenml_roles(zenml_live) != before

    runner.run_id = "4300"
    rolled_back = runner.job(
        "policysync-rollback.yml", "rollback", inputs={"provider": "zenml", "apply-run-id": "4242"}
    )
    assert rolled_back.ok, rolled_back.log
    assert zenml_roles(zenml_live) == before  # the deleted role back, with its holder


# Environments: policysync-promote.yml, and the input `environment` of the others.

LIVE_PROJECT_ID = "project-live-99999999-2222-4333-8444-555555555555"
LIVE_SECRET = "secret-live-workflows-bGl2ZS13b3JrZmxvd3M"
AUDITOR = {
    "role_id": "auditor",
    "description": "Reads the audit log",
    "permissions": [{"resource_id": "audit-log", "actions": ["read"]}],
}


def environments_seed(prefix: str, slugs: list[str]) -> Seed:
    """Organizations with ids of their project (`prefix`) and the slugs given."""
    organizations = [
        {
            "organization_id": f"organization-{prefix}-{i:08d}-0000-4000-8000-000000000000",
            "organization_slug": slug,
            "organization_external_id": "acme-42" if slug == "acme" else None,
        }
        for i, slug in enumerate(slugs)
    ]
    return Seed.model_validate({"policy": SEED.policy, "organizations": organizations})


def roles_in(store: Store, slug: str) -> list[str]:
    found = store.find(slug)
    assert found is not None
    stored: Any = found.org_policy  # the row's JSON
    return sorted(r["role_id"] for r in json.loads(stored)["roles"])


@pytest.fixture
def promotion(runner: Runner, workspace: Path) -> Iterator[tuple[Store, Store]]:
    """A policy tree for two environments (its files name organizations by slug or
    external id; the settings name no variables: each GitHub environment holds its
    project's credentials under the standard names), and one emulator per environment:
    test has acme, globex and hooli; live, other ids, no hooli."""
    shutil.rmtree(workspace / "policies" / "orgs")
    shutil.rmtree(workspace / "policies" / "templates")
    shutil.rmtree(workspace / "policies" / "tests")
    (workspace / "policies" / "orgs").mkdir()
    for name, org_id in (("acme", "acme-42"), ("globex", "globex"), ("hooli", "hooli")):
        document = {"organization_id": org_id, "org_policy": {"roles": [AUDITOR]}}
        (workspace / "policies" / "orgs" / f"{name}.json").write_text(json.dumps(document))
    (workspace / "policysync.toml").write_text("[environments.test]\n\n[environments.live]\n")
    commit_all(workspace, "a tree for test and live")
    runner.sha = git(workspace, "rev-parse", "HEAD").strip()
    runner.hidden = {SECRET, LIVE_SECRET}
    test, live = Store(), Store()
    test.load(environments_seed("test", ["acme", "globex", "hooli"]))
    live.load(environments_seed("live", ["globex", "acme"]))
    with (
        EmulatorThread(build(test, PROJECT_ID, SECRET, Limits())) as test_emulator,
        EmulatorThread(build(live, LIVE_PROJECT_ID, LIVE_SECRET, Limits())) as live_emulator,
    ):
        test_credentials = credentials(test_emulator.url)
        live_credentials = {
            "STYTCH_PROJECT_ID": LIVE_PROJECT_ID,
            "STYTCH_SECRET": LIVE_SECRET,
            "STYTCH_BASE_URL": live_emulator.url,
        }
        for kind in ENVIRONMENTS:
            runner.environments[f"{kind}-test"] = dict(test_credentials)
            runner.environments[f"{kind}-live"] = dict(live_credentials)
        yield test, live


def promote_call(**inputs: Any) -> Call:
    called = triggers(load(WORKFLOWS / "policysync-promote.yml"))["workflow_call"]
    return Call("policysync-promote.yml", typed(called["inputs"], inputs, "promote"), {}, {})


def test_promotion_applies_the_merged_commit_to_test_then_the_same_commit_to_live(
    runner: Runner, workspace: Path, artifacts: Artifacts, promotion: tuple[Store, Store]
) -> None:
    test, live = promotion
    merged = runner.sha
    call = promote_call(provider="stytch")
    first = runner.job(call, "first")
    assert first.ok, first.log
    assert first.environment == "policysync-apply-test"
    assert first.outputs == {"commit": merged}
    assert f"### policysync plan of {merged} for environment test" in first.summary
    assert "Apply: 3 applied" in first.summary
    assert [roles_in(test, s) for s in ("acme", "globex", "hooli")] == [["auditor"]] * 3
    assert roles_in(live, "acme") == []  # live waits for the approval

    # Meanwhile another commit lands on main: the promotion goes on with its own.
    edit(workspace / "policies" / "orgs" / "globex.json", lambda d: add_role(d, "late-role"))
    commit_all(workspace, "merged after the promotion started")
    second = runner.job(call, "second", needs={"first": first})
    assert second.ok, second.log
    assert second.environment == "policysync-apply-live"  # its reviewers approve it
    assert f"### policysync plan of {merged} for environment live" in second.summary
    assert "! organization hooli: not in environment live, skipped" in second.summary
    assert "1 not in the environment" in second.summary
    assert roles_in(live, "acme") == roles_in(live, "globex") == ["auditor"]  # no late-role
    checkouts = [u for u in artifacts.uses_of("actions/checkout") if "path" not in u]
    assert checkouts == [{"ref": merged, "persist-credentials": False}] * 2

    journals = artifacts.runs[runner.run_id]
    for environment in ("test", "live"):
        journal = journals[f"policysync-journal-{runner.run_id}-1-{environment}"]
        [run] = journal_runs(journal)
        assert json.loads(journal[f"{run}/run.json"])["environment"] == environment

    # The rollback workflow puts back live's part only, from the promotion's journal.
    runner.run_id = "4400"
    inputs = {"apply-run-id": "4242", "environment": "live"}
    rolled = runner.job("policysync-rollback.yml", "rollback", inputs=inputs)
    assert rolled.ok, rolled.log
    assert rolled.environment == "policysync-apply-live"
    assert "**Rollback: 2 applied" in rolled.summary
    assert roles_in(live, "acme") == roles_in(live, "globex") == []
    assert roles_in(test, "acme") == ["auditor"]


def test_promotion_stops_before_live_when_test_fails(
    runner: Runner, promotion: tuple[Store, Store]
) -> None:
    _test, live = promotion
    runner.environments["policysync-apply-test"]["STYTCH_SECRET"] = "secret-test-wrong-d3Jvbmc"
    jobs = runner.run(promote_call())
    assert jobs["first"].result == "failure"
    assert jobs["second"].result == "skipped"
    assert roles_in(live, "acme") == []


def test_promotion_refuses_bad_environment_names_first(
    runner: Runner, recorded: Path, promotion: tuple[Store, Store]
) -> None:
    for inputs in ({"from": "live"}, {"to": "$(reboot)"}):
        job = runner.job(promote_call(**inputs), "first")
        assert not job.ok
        assert [name for name, step in job.steps.items() if step.ran] == ["Check the inputs"]
    assert not recorded.exists()


def test_the_input_environment_names_the_environments_and_reaches_policysync(
    runner: Runner, gh_state: Path, recorded: Path, promotion: tuple[Store, Store]
) -> None:
    test, live = promotion
    inputs = {"environment": "live", "allow-delete": True}
    plan = runner.job("policysync-apply.yml", "plan", inputs=inputs)
    assert plan.ok, plan.log
    assert plan.environment == "policysync-read-live"
    assert "### policysync plan (environment live)" in plan.summary
    applied = runner.job("policysync-apply.yml", "apply", inputs=inputs, needs={"plan": plan})
    assert applied.ok, applied.log
    assert applied.environment == "policysync-apply-live"
    assert [c["argv"][-2:] for c in calls_of(recorded, "plan")] == [["--env", "live"]]
    assert calls_of(recorded, "apply")[0]["argv"][-2:] == ["--env", "live"]
    assert roles_in(live, "acme") == ["auditor"]
    assert roles_in(test, "acme") == []

    globex = live.find("globex")
    assert globex is not None
    live.set_org_policy(globex.organization_id, SEED.organizations[0].org_policy)  # drift
    drift = runner.job("policysync-drift.yml", "drift", inputs={"environment": "live"})
    assert drift.ok, drift.log
    assert drift.environment == "policysync-read-live"
    assert calls_of(recorded, "drift")[0]["argv"][-2:] == ["--env", "live"]
    [issue] = gh(gh_state)["issues"]
    assert issue["labels"] == ["policysync-drift-live"]
    assert issue["title"].endswith("(environment live)")
    assert "hooli" in issue["body"]
    assert "not in environment live, skipped" in issue["body"]

    for bad in ("$(reboot)", "-live"):
        job = runner.job("policysync-drift.yml", "drift", inputs={"environment": bad})
        assert not job.ok
        assert "the input environment must be the name of an environment" in job.log

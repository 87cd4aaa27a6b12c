"""The GitHub workflows and the composite action, run as a runner runs them.

Each job's `run:` steps are taken verbatim from the YAML and run with bash, in order, in a
real git repository, with the runner's files and variables (`GITHUB_STEP_SUMMARY`,
`GITHUB_OUTPUT`, `GITHUB_ENV`, `GITHUB_PATH`, `GITHUB_WORKSPACE`, `RUNNER_TEMP`...), the
`env:` they declare with their `${{ }}` values resolved from contexts the test supplies
(a job's `secrets` are the repository's, and those of the environment it names), and
their `if:` conditions evaluated. policysync is the one of this virtual environment,
Stytch is the bundled emulator on 127.0.0.1, and `gh` is a fake placed first on PATH
that keeps comments and issues in a JSON file, answers with GitHub's JSON shapes, applies
`--jq` filters with jq itself, and records every call (no network).
Steps with `uses:` are not run; the test stands in for the two whose effect the next
steps need (upload-artifact and download-artifact, through `Artifacts`).

This file is also the fake `gh`: `python tests/test_workflows.py ARGS...`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
FAKE_GH_STATE = "FAKE_GH_STATE"
BOT = {"login": "github-actions[bot]", "type": "Bot"}  # who comments with GITHUB_TOKEN


# The fake `gh`, first: it runs as a script, without pytest or policysync.


def fake_gh(argv: list[str]) -> int:
    state_path = Path(os.environ[FAKE_GH_STATE])
    state = json.loads(state_path.read_text())
    state["calls"].append(argv)
    try:
        return _gh(state, argv)
    finally:
        state_path.write_text(json.dumps(state, indent=1))


def _gh(state: dict[str, Any], argv: list[str]) -> int:
    if not os.environ.get("GH_TOKEN"):
        print("gh: set the GH_TOKEN environment variable", file=sys.stderr)
        return 4
    repo = os.environ.get("GH_REPO", "")
    words: list[str] = []
    opts: dict[str, str] = {}
    rest = iter(argv)
    for arg in rest:
        if arg in ("--paginate", "--force"):
            opts[arg] = ""
        elif arg.startswith("-"):
            opts[arg] = next(rest)
        else:
            words.append(arg)

    def body() -> str:
        if "--body-file" in opts:
            return Path(opts["--body-file"]).read_text()
        name, _, value = opts["-F"].partition("=@")
        assert name == "body", opts
        return Path(value).read_text()

    def refused() -> int:
        print("gh: HTTP 403: Resource not accessible by integration", file=sys.stderr)
        return 1

    issues = state["issues"]
    match words:
        case ["api", endpoint]:
            method = opts.get("--method", "GET")
            thread = re.fullmatch(rf"repos/{re.escape(repo)}/issues/(\d+)/comments", endpoint)
            comment = re.fullmatch(rf"repos/{re.escape(repo)}/issues/comments/(\d+)", endpoint)
            if thread and method == "GET":
                assert "--paginate" in opts, opts
                page = [c for c in state["comments"] if c["issue"] == int(thread[1])]
                print_jq(opts["--jq"], page)
                return 0
            if thread and method == "POST":
                if state["read_only"]:
                    return refused()
                state["next_id"] += 1
                state["comments"].append(
                    {"id": state["next_id"], "issue": int(thread[1]), "user": BOT, "body": body()}
                )
                print(json.dumps(state["comments"][-1]))
                return 0
            if comment and method == "PATCH":
                if state["read_only"]:
                    return refused()
                (found,) = [c for c in state["comments"] if c["id"] == int(comment[1])]
                found["body"] = body()
                print(json.dumps(found))
                return 0
        case ["issue", "list"]:
            assert (opts["--json"], opts["--jq"]) == ("number", ".[].number"), opts
            for issue in reversed(issues):  # newest first, as gh lists them
                if issue["state"] == opts["--state"] and opts["--label"] in issue["labels"]:
                    print(issue["number"])
            return 0
        case ["issue", "create"]:
            assert opts["--label"] in state["labels"], "the label must exist first"
            number = 100 + len(issues)
            issues.append(
                {
                    "number": number,
                    "title": opts["--title"],
                    "labels": [opts["--label"]],
                    "body": body(),
                    "state": "open",
                    "comments": [],
                }
            )
            print(f"https://github.com/{repo}/issues/{number}")
            return 0
        case ["issue", "edit", number]:
            (issue,) = [i for i in issues if i["number"] == int(number)]
            issue["body"] = body()
            return 0
        case ["issue", "close", number]:
            (issue,) = [i for i in issues if i["number"] == int(number)]
            assert opts["--reason"] == "completed", opts
            issue["state"] = "closed"
            issue["comments"].append(opts["--comment"])
            return 0
        case ["label", "create", name]:
            assert "--force" in opts, "without --force a second run fails on the label"
            if name not in state["labels"]:
                state["labels"].append(name)
            return 0
    print(f"fake gh: unsupported call {argv}", file=sys.stderr)
    return 2


def print_jq(program: str, value: Any) -> None:
    """`gh --jq`: each result on a line, a string as it is, anything else as JSON."""
    import jq  # a dev dependency: only the runs of the fake gh under pytest need it

    for result in jq.compile(program).input_value(value).all():
        print(result if isinstance(result, str) else json.dumps(result))


if __name__ == "__main__":
    sys.exit(fake_gh(sys.argv[1:]))


# The runner.

import jq  # noqa: E402
import pytest  # noqa: E402  (the fake gh above runs without it)
import yaml  # noqa: E402
from support.clirun import run  # noqa: E402
from support.gitkit import add_role, commit_all, edit, git  # noqa: E402

from policysync.config import Limits  # noqa: E402
from policysync.emulator.seed import Seed  # noqa: E402
from policysync.emulator.server import EmulatorThread, build  # noqa: E402
from policysync.emulator.store import Store  # noqa: E402

SEED = Seed.model_validate_json((ROOT / "policies" / "emulator-seed.json").read_text())
PROJECT_ID = "project-test-11111111-2222-4333-8444-555555555555"
SECRET = "secret-test-workflows-d29ya2Zsb3dz"
VENV = Path(sys.executable).parent.parent  # not resolved: the venv, not its base Python
REPOSITORY = "acme/policies"
ENVIRONMENTS = ("policysync-read", "policysync-apply")  # README's, "Setting it up"
PR_NUMBER = 7
STEP_TIMEOUT = 60
EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>\d+)|(?P<op>==|!=|&&|\|\||!|\(|\))"
    r"|(?P<name>[A-Za-z_][\w-]*(?:\.[\w-]+)*))"
)
STATUS_FUNCTIONS = re.compile(r"\b(always|success|failure|cancelled)\s*\(")


def load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    if True in document:  # YAML 1.1 reads the key `on` as true
        document["on"] = document.pop(True)
    return document


def text(value: Any) -> str:
    """A context value as GitHub turns it into a string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


@dataclass
class Step:
    name: str
    ran: bool  # a `run:` step that was run (uses steps never are)
    condition: bool  # its `if:` held
    code: int = 0
    stdout: str = ""
    stderr: str = ""
    outputs: dict[str, str] = field(default_factory=dict)


@dataclass
class Job:
    ran: bool
    ok: bool = True
    summary: str = ""
    outputs: dict[str, str] = field(default_factory=dict)
    steps: dict[str, Step] = field(default_factory=dict)
    temp: Path = Path()

    @property
    def log(self) -> str:
        return "".join(s.stdout + s.stderr for s in self.steps.values())


Uses = Callable[[dict[str, Any], dict[str, str], "Runner"], None]


class Runner:
    """Runs jobs of one repository checkout (`workspace`) the way a runner would."""

    def __init__(self, workspace: Path, scratch: Path, gh_state: Path, uses: Uses) -> None:
        self.workspace = workspace
        self.scratch = scratch
        self.gh_state = gh_state
        self.uses = uses
        self.secrets: dict[str, str] = {}  # the repository's: every job reads them
        self.environments: dict[str, dict[str, str]] = {}  # environment secrets, by name
        self.jobs_run = 0
        self.context: dict[str, Any] = {}
        assert (VENV / "bin" / "policysync").is_file(), "run pytest with .venv/bin/python"
        fakebin = scratch / "fakebin"
        fakebin.mkdir(parents=True, exist_ok=True)
        gh = fakebin / "gh"
        gh.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{Path(__file__)}" "$@"\n')
        gh.chmod(0o755)
        self.path = f"{fakebin}:{VENV / 'bin'}:/usr/local/bin:/usr/bin:/bin"

    # Expressions.

    def lookup(self, path: str) -> Any:
        head, *rest = path.split(".")
        value = self.context[head]
        for part in rest:
            if isinstance(value, dict) and part in value:
                value = value[part]
            elif head in ("secrets", "steps", "needs"):
                return ""  # an unset secret or output is the empty string
            else:
                raise KeyError(f"the test gives no value for {path}")
        return value

    def evaluate(self, expression: str, failed: bool = False) -> Any:
        """A GitHub expression, through Python: literals, contexts, ==, !=, !, &&, ||,
        parentheses and the status functions are all these workflows use."""
        python, pos = [], 0
        expression = expression.strip()
        while pos < len(expression):
            token = TOKEN.match(expression, pos)
            assert token, f"unsupported expression: {expression!r}"
            pos = token.end()
            if token["str"]:
                python.append(repr(token["str"][1:-1].replace("''", "'")))
            elif token["num"]:
                python.append(token["num"])
            elif token["op"]:
                op = token["op"]
                python.append({"&&": " and ", "||": " or ", "!": " not "}.get(op, op))
            elif expression[pos:].lstrip().startswith("("):
                python.append(f"_{token['name']}")
            elif token["name"] in ("true", "false", "null"):
                python.append({"true": "True", "false": "False", "null": "None"}[token["name"]])
            else:
                python.append(f"_ctx({token['name']!r})")
        names = {
            "__builtins__": {},
            "_ctx": self.lookup,
            "_always": lambda: True,
            "_success": lambda: not failed,
            "_failure": lambda: failed,
            "_cancelled": lambda: False,
        }
        return eval("".join(python), names)  # the text of our own workflows

    def interpolate(self, value: Any) -> str:
        return EXPRESSION.sub(lambda m: text(self.evaluate(m[1])), text(value))

    def condition(self, source: Any, failed: bool) -> bool:
        if source is None:
            return not failed
        inner = EXPRESSION.fullmatch(str(source).strip())
        expression = inner[1] if inner else str(source)
        if not STATUS_FUNCTIONS.search(expression):
            expression = f"success() && ({expression})"
        return bool(self.evaluate(expression, failed))

    # Jobs.

    def job(
        self,
        workflow: str,
        job_id: str,
        *,
        inputs: dict[str, Any] | None = None,
        needs: dict[str, Job] | None = None,
    ) -> Job:
        document = load(WORKFLOWS / workflow)
        job = document["jobs"][job_id]
        environment = job.get("environment")
        if isinstance(environment, dict):
            environment = environment["name"]
        self.begin(inputs or {}, needs or {}, environment)
        if "if" in job and not self.condition(job["if"], failed=False):
            return Job(ran=False)
        shell = job.get("defaults", document.get("defaults", {})).get("run", {}).get("shell")
        env = {k: self.interpolate(v) for k, v in document.get("env", {}).items()}
        self.context["env"] = env
        env.update({k: self.interpolate(v) for k, v in job.get("env", {}).items()})
        result = self.steps(job["steps"], env, shell)
        result.outputs = {k: self.interpolate(v) for k, v in job.get("outputs", {}).items()}
        return result

    def action(
        self, path: Path, inputs: dict[str, str], skip: set[str], prepare: Callable[[Path], None]
    ) -> Job:
        """The steps of a composite action but those named in `skip`; `prepare` gets the
        runner's temp folder first."""
        document = load(path)
        given = {k: inputs.get(k, text(v.get("default"))) for k, v in document["inputs"].items()}
        prepare(self.begin(given, {}))
        steps = [s for s in document["runs"]["steps"] if s.get("name") not in skip]
        return self.steps(steps, {}, None)

    def begin(
        self, inputs: dict[str, Any], needs: dict[str, Job], environment: str | None = None
    ) -> Path:
        """A job's contexts. Its secrets: the repository's and, when it names an
        environment, that environment's (which win, as on GitHub)."""
        self.jobs_run += 1
        temp = self.scratch / f"job{self.jobs_run}" / "runner-temp"
        temp.mkdir(parents=True)
        secrets = dict(self.secrets)
        if environment is not None:
            secrets.update(self.environments.get(environment, {}))
        self.context = {
            "secrets": secrets,
            "inputs": inputs,
            "needs": {k: {"outputs": v.outputs, "result": "success"} for k, v in needs.items()},
            "steps": {},
            "env": {},
            "runner": {"temp": str(temp), "os": "Linux"},
            "github": {
                "token": "ghs_fake-token-for-tests",
                "repository": REPOSITORY,
                "server_url": "https://github.com",
                "run_id": "4242",
                "run_attempt": "1",
                "workspace": str(self.workspace),
                "event": {"pull_request": {"number": PR_NUMBER}},
            },
        }
        return temp

    def steps(self, steps: list[dict[str, Any]], env: dict[str, str], shell: str | None) -> Job:
        temp = Path(self.context["runner"]["temp"])
        job = Job(ran=True, temp=temp)
        summaries: list[str] = []
        path = self.path
        failed = False
        for index, step in enumerate(steps):
            name = step.get("id") or step.get("name") or f"step{index}"
            if not self.condition(step.get("if"), failed):
                job.steps[name] = Step(name, ran=False, condition=False)
                continue
            if "uses" in step:
                given = {k: self.interpolate(v) for k, v in step.get("with", {}).items()}
                self.uses(step, given, self)
                job.steps[name] = Step(name, ran=False, condition=True)
                self.context["steps"][name] = {"outputs": {}, "outcome": "success"}
                continue
            files = {
                key: temp.parent / f"{index}-{key.lower()}"
                for key in ("GITHUB_STEP_SUMMARY", "GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_PATH")
            }
            for file in files.values():
                file.touch()
            script = temp.parent / f"{index}-script.sh"
            script.write_text(step["run"])
            step_env = {k: self.interpolate(v) for k, v in step.get("env", {}).items()}
            process_env = {
                "PATH": path,
                "HOME": str(self.scratch / "home"),
                "LANG": "C.UTF-8",
                "CI": "true",
                "GITHUB_ACTIONS": "true",
                "GITHUB_WORKSPACE": str(self.workspace),
                "GITHUB_REPOSITORY": REPOSITORY,
                "GITHUB_REF_NAME": "main",
                "GITHUB_RUN_ID": "4242",
                "GITHUB_SERVER_URL": "https://github.com",
                "RUNNER_TEMP": str(temp),
                FAKE_GH_STATE: str(self.gh_state),
                **{k: str(v) for k, v in files.items()},
                **env,
                **step_env,
            }
            shell_name = step.get("shell", shell)
            command = {
                "bash": ["bash", "--noprofile", "--norc", "-eo", "pipefail"],
                None: ["bash", "-e"],
            }[shell_name]
            cwd = self.workspace / self.interpolate(step.get("working-directory", "."))
            process = subprocess.run(
                [*command, str(script)],
                cwd=cwd,
                env=process_env,
                capture_output=True,
                text=True,
                timeout=STEP_TIMEOUT,
                check=False,
            )
            outputs = parse_env_file(files["GITHUB_OUTPUT"].read_text())
            env.update(parse_env_file(files["GITHUB_ENV"].read_text()))
            for line in files["GITHUB_PATH"].read_text().splitlines():
                path = f"{line}:{path}"
            summaries.append(files["GITHUB_STEP_SUMMARY"].read_text())
            outcome = "success" if process.returncode == 0 else "failure"
            self.context["steps"][name] = {"outputs": outputs, "outcome": outcome}
            job.steps[name] = Step(
                name, True, True, process.returncode, process.stdout, process.stderr, outputs
            )
            assert "Traceback" not in process.stdout + process.stderr, process.stderr
            assert SECRET not in process.stdout + process.stderr + summaries[-1]
            failed = failed or process.returncode != 0
        job.ok = not failed
        job.summary = "".join(summaries)
        return job


def parse_env_file(content: str) -> dict[str, str]:
    """`name=value` lines and `name<<DELIMITER` blocks, as the runner reads them."""
    values: dict[str, str] = {}
    lines = iter(content.splitlines())
    for line in lines:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            block: list[str] = []
            for item in lines:
                if item == delimiter:
                    break
                block.append(item)
            values[name] = "\n".join(block)
        elif line:
            name, value = line.split("=", 1)
            values[name] = value
    return values


class Artifacts:
    """upload-artifact and download-artifact, between the jobs of one test."""

    def __init__(self) -> None:
        self.stored: dict[str, dict[str, bytes]] = {}

    def __call__(self, step: dict[str, Any], given: dict[str, str], runner: Runner) -> None:
        action = step["uses"].split("@")[0]
        if action == "actions/upload-artifact":
            source = runner.workspace / given["path"]  # an absolute path stays as it is
            base = source.parent if source.is_file() else source
            files = [source] if source.is_file() else sorted(source.rglob("*"))
            found = {str(f.relative_to(base)): f for f in files if f.is_file()}
            assert found or given.get("if-no-files-found") != "error", given
            if found:
                self.stored[given["name"]] = {k: f.read_bytes() for k, f in found.items()}
        elif action == "actions/download-artifact":
            target = runner.workspace / given["path"]
            for relative, content in self.stored[given["name"]].items():
                (target / relative).parent.mkdir(parents=True, exist_ok=True)
                (target / relative).write_bytes(content)


# Fixtures.


def gh_calls(state: Path, *, mutating: bool = False) -> list[list[str]]:
    calls: list[list[str]] = json.loads(state.read_text())["calls"]
    reads = (["issue", "list"], ["api", "--paginate"])
    return [c for c in calls if not mutating or c[:2] not in reads]


def gh(state: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(state.read_text())
    return loaded


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
    state.write_text(
        json.dumps(
            {
                "calls": [],
                "comments": [unrelated],
                "next_id": 1,
                "issues": [],
                "labels": [],
                "read_only": False,
            }
        )
    )
    return state


@pytest.fixture
def artifacts() -> Artifacts:
    return Artifacts()


@pytest.fixture
def runner(workspace: Path, tmp_path: Path, gh_state: Path, artifacts: Artifacts) -> Runner:
    return Runner(workspace, tmp_path / "runner", gh_state, artifacts)


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


def credentials(url: str) -> dict[str, str]:
    return {"STYTCH_PROJECT_ID": PROJECT_ID, "STYTCH_SECRET": SECRET, "STYTCH_BASE_URL": url}


def push_pr_commit(workspace: Path, role_id: str) -> None:
    """A commit on top of the checkout, as a pull request's merge commit is on its base."""
    edit(workspace / "policies" / "orgs" / "acme.json", lambda d: add_role(d, role_id))
    commit_all(workspace, f"add {role_id}")


# The files themselves.

USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)$", re.MULTILINE)
PINNED = re.compile(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}")


def github_files() -> list[Path]:
    return [*sorted(WORKFLOWS.glob("*.yml")), ROOT / "action.yml"]


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
    for job in jobs.values():
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


def test_policy_workflows_are_triggered_and_guarded_as_documented() -> None:
    pr = load(WORKFLOWS / "policy-pr.yml")
    assert pr["on"]["pull_request"]["paths"] == ["policies/**", "schemas/**"]
    assert pr["jobs"]["plan"]["permissions"]["pull-requests"] == "write"
    drift = load(WORKFLOWS / "policy-drift.yml")
    assert set(drift["on"]) == {"schedule", "workflow_dispatch"}
    assert drift["jobs"]["drift"]["permissions"]["issues"] == "write"
    assert drift["jobs"]["drift"]["environment"] == "policysync-read"
    apply = load(WORKFLOWS / "policy-apply.yml")
    assert set(apply["on"]) == {"workflow_dispatch"}
    allow = apply["on"]["workflow_dispatch"]["inputs"]["allow_delete"]
    assert (allow["type"], allow["default"]) == ("boolean", False)
    assert apply["concurrency"]["cancel-in-progress"] is False
    assert apply["jobs"]["apply"]["environment"] == "policysync-apply"
    assert apply["jobs"]["plan"]["environment"] == "policysync-read"
    journal = apply["jobs"]["apply"]["steps"][-1]
    assert journal["uses"].startswith("actions/upload-artifact@")
    assert journal["if"] == "always()"  # also when the apply failed
    assert journal["with"]["include-hidden-files"] is True  # .policysync/ is hidden


SECRET_REFERENCE = re.compile(r"\bsecrets\.(\w+)")


def secrets_named(node: Any) -> set[str]:
    """The secrets a piece of a workflow names anywhere in it (env:, with:, run:, if:)."""
    if isinstance(node, dict):
        return set().union(*(secrets_named(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(secrets_named(v) for v in node))
    return set(SECRET_REFERENCE.findall(node)) if isinstance(node, str) else set()


# The credentials are named per provider (README.md, "Setting it up"); each step that
# reads live state gets both sets, and the settings' `provider` picks the one it reads.
STYTCH_CREDENTIALS = ("STYTCH_PROJECT_ID", "STYTCH_SECRET", "STYTCH_BASE_URL")
ZENML_CREDENTIALS = ("ZENML_PRO_API_KEY", "ZENML_PRO_API_URL")
CREDENTIAL_PREFIXES = ("STYTCH_", "ZENML_")


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
            assert job.get("environment") in ENVIRONMENTS, f"{path.name}: job {name}: {named}"
    # The zizmor audit that `make workflows` runs on the same files.
    assert "secrets-outside-env" not in (ROOT / ".github" / "zizmor.yml").read_text()


def test_every_step_given_the_stytch_credentials_is_given_the_zenml_ones() -> None:
    """Wherever an `env:` (of a job or a step) passes credentials, it passes both
    providers' complete sets, each variable from the secret of its name, in a job of one
    of the environments; the list of those places is pinned, so none goes unnoticed."""
    given = []
    for path in sorted(WORKFLOWS.glob("*.yml")):
        for job_name, job in load(path)["jobs"].items():
            for where, env in [
                (f"job {job_name}", job.get("env", {})),
                *(
                    (f"job {job_name}, step {s.get('name')}", s.get("env", {}))
                    for s in job["steps"]
                ),
            ]:
                credentials = {k: v for k, v in env.items() if k.startswith(CREDENTIAL_PREFIXES)}
                if not credentials:
                    continue
                expected = {
                    k: f"${{{{ secrets.{k} }}}}" for k in (*STYTCH_CREDENTIALS, *ZENML_CREDENTIALS)
                }
                assert credentials == expected, f"{path.name}: {where}"
                assert job.get("environment") in ENVIRONMENTS, f"{path.name}: {where}"
                given.append((path.name, where))
    assert given == [
        ("policy-apply.yml", "job plan, step Plan"),
        ("policy-apply.yml", "job apply, step Apply the saved plan"),
        ("policy-drift.yml", "job drift, step Detect drift"),
    ]


@pytest.mark.parametrize("path", [*github_files(), ROOT / "README.md"], ids=lambda p: p.name)
def test_examples_in_comments_and_readme_pass_both_providers_credentials(path: Path) -> None:
    """The `env:` examples a user copies (action.yml's header, README's composite action)
    name ZenML Pro's secrets as often as Stytch's."""
    source = path.read_text()
    assert source.count("secrets.STYTCH_SECRET }}") == source.count("secrets.ZENML_PRO_API_KEY }}")
    assert source.count("secrets.STYTCH_SECRET }}") == source.count("secrets.ZENML_PRO_API_URL }}")


def test_pr_workflow_plans_offline_and_reaches_no_credentials() -> None:
    pr = load(WORKFLOWS / "policy-pr.yml")
    for name, job in pr["jobs"].items():
        assert "environment" not in job, name
        assert secrets_named(job) == set(), name
    plans = [
        line.strip()
        for job in pr["jobs"].values()
        for step in job["steps"]
        for line in step.get("run", "").splitlines()
        if line.strip().startswith("policysync plan")
    ]
    assert plans, "no plan in policy-pr.yml"
    for line in plans:
        assert "--against-ref HEAD^1" in line


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
    assert run([*args, *staged], capsys)[:2] == (0, "")
    globex = workdir / "policies/orgs/globex.json"
    globex.write_text(json.dumps(json.loads(globex.read_text())))  # one line
    before = globex.read_bytes()
    assert run([*args, *staged], capsys)[:2] == (1, "policies/orgs/globex.json\n")
    assert globex.read_bytes() == before  # the hook writes nothing


# policy-pr.yml


def test_pr_validate_annotates_the_broken_line(runner: Runner, workspace: Path) -> None:
    job = runner.job("policy-pr.yml", "validate")
    assert job.ok, job.log

    acme = workspace / "policies" / "orgs" / "acme.json"
    acme.write_text(acme.read_text().replace('"approve"', '"aprove"', 1))
    job = runner.job("policy-pr.yml", "validate")
    assert not job.ok
    assert re.search(
        r"^::error file=policies/orgs/acme\.json,line=\d+,col=\d+,title=[^:]*::.*aprove",
        job.steps["Validate"].stdout,
        re.MULTILINE,
    ), job.log


def test_pr_plan_is_the_offline_plan_and_keeps_one_sticky_comment(
    runner: Runner, workspace: Path, gh_state: Path, live: Store
) -> None:
    # Even where credentials were left as repository secrets (an older setup), the pull
    # request's plan is made from git alone: its job names no secret.
    runner.secrets = runner.environments["policysync-read"]
    push_pr_commit(workspace, "first-role")
    job = runner.job("policy-pr.yml", "plan")
    assert job.ok, job.log
    assert job.steps["plan"].outputs["exit-code"] == "2"
    assert "policysync plan (offline)" in job.summary
    assert "Made from git alone, without Stytch credentials" in job.summary
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
    job = runner.job("policy-pr.yml", "plan")
    assert job.ok, job.log
    _, patch = gh_calls(gh_state, mutating=True)
    assert patch[:4] == ["api", "--method", "PATCH", f"repos/{REPOSITORY}/issues/comments/2"]
    comments = gh(gh_state)["comments"]
    assert [c["id"] for c in comments] == [1, 2]
    assert "+ role second-role" in comments[1]["body"]
    assert comments[0]["body"] == "LGTM, but <!-- policysync-plan -->?"


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

    push_pr_commit(workspace, "first-role")
    job = runner.job("policy-pr.yml", "plan")
    assert job.ok, job.log
    [post] = gh_calls(gh_state, mutating=True)  # a comment of its own, not a PATCH
    assert post[:3] == ["api", "--method", "POST"]
    comments = gh(gh_state)["comments"]
    assert [c["body"] for c in comments[1:-1]] == [forged] * len(SPOOFS)  # left alone
    assert (comments[-1]["id"], comments[-1]["user"]) == (len(SPOOFS) + 2, BOT)
    assert "+ role first-role" in comments[-1]["body"]

    push_pr_commit(workspace, "second-role")  # the next push updates the bot's comment
    job = runner.job("policy-pr.yml", "plan")
    assert job.ok, job.log
    _, patch = gh_calls(gh_state, mutating=True)
    assert patch[3] == f"repos/{REPOSITORY}/issues/comments/{len(SPOOFS) + 2}"
    comments = gh(gh_state)["comments"]
    assert [c["body"] for c in comments[1:-1]] == [forged] * len(SPOOFS)
    assert "+ role second-role" in comments[-1]["body"]


def test_pr_plan_comment_filter_matches_the_marker_and_the_bot() -> None:
    """The `--jq` filter of the sticky comment step, on its own."""
    steps = load(WORKFLOWS / "policy-pr.yml")["jobs"]["plan"]["steps"]
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
    job = runner.job("policy-pr.yml", "plan")
    assert job.ok, job.log  # the comment could not be made: a warning, not a failure
    assert "policysync plan (offline)" in job.summary
    assert "**Plan: 1 to add, 0 to change, 0 to destroy, in 1 of 7 organizations.**" in job.summary
    assert "+ role offline-role" in job.summary
    assert "::warning title=policysync plan::could not comment" in job.log
    assert len(gh(gh_state)["comments"]) == 1


def test_pr_plan_that_fails_fails_the_job_but_still_comments(
    runner: Runner, workspace: Path, gh_state: Path
) -> None:
    acme = workspace / "policies" / "orgs" / "acme.json"
    acme.write_text(acme.read_text().replace('"approve"', '"aprove"', 1))
    commit_all(workspace, "a typo")
    job = runner.job("policy-pr.yml", "plan")
    assert not job.ok
    assert job.steps["plan"].outputs["exit-code"] == "1"
    assert "The plan failed (exit code 1)" in job.summary
    assert job.steps["Sticky pull-request comment"].ran
    assert "The plan failed" in gh(gh_state)["comments"][-1]["body"]


# policy-drift.yml


def test_drift_opens_updates_and_closes_one_issue(
    runner: Runner, workspace: Path, gh_state: Path, live: Store
) -> None:
    job = runner.job("policy-drift.yml", "drift")
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
    assert issue["body"].startswith("<!-- policysync-drift -->\n")
    assert "+ role legacy-admin" in issue["body"]
    assert "/acme/policies/actions/runs/4242" in issue["body"]

    job = runner.job("policy-drift.yml", "drift")  # still drifted: the same issue, updated
    assert job.ok, job.log
    body = str(job.temp / "policysync-drift-issue.md")
    assert gh_calls(gh_state, mutating=True)[2] == ["issue", "edit", "100", "--body-file", body]
    assert len(gh(gh_state)["issues"]) == 1

    fixed = subprocess.run(
        [VENV / "bin" / "policysync", "apply", "--auto-approve", "--allow-delete"],
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
    job = runner.job("policy-drift.yml", "drift")  # drift gone: the issue is closed
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
    job = runner.job("policy-drift.yml", "drift")  # nothing to do: one look, no change
    assert job.ok, job.log
    assert len(gh_calls(gh_state)) == calls + 1
    assert len(gh_calls(gh_state, mutating=True)) == 4


def test_drift_that_fails_fails_the_job_and_leaves_the_issue_alone(
    runner: Runner, gh_state: Path, live: Store
) -> None:
    runner.environments["policysync-read"]["STYTCH_SECRET"] = "secret-test-wrong-d3Jvbmc"
    job = runner.job("policy-drift.yml", "drift")
    assert not job.ok
    assert job.steps["drift"].outputs["exit-code"] == "1"
    assert "::error title=policysync drift::drift detection failed (exit code 1)" in job.log
    assert not job.steps["Open, update or close the drift issue"].condition
    assert gh_calls(gh_state) == []


# policy-apply.yml


def test_apply_applies_the_saved_plan_and_keeps_the_journal(
    runner: Runner, workspace: Path, artifacts: Artifacts, live: Store
) -> None:
    plan = runner.job("policy-apply.yml", "plan")
    assert plan.ok, plan.log
    assert plan.outputs == {"changes": "true"}
    assert "**Plan: 2 to add, 2 to change, 1 to destroy, in 4 of 7 organizations.**" in plan.summary
    assert PROJECT_ID.encode() in artifacts.stored["policysync-plan"]["policysync-plan.json"]

    # Without allow_delete the saved plan (it deletes a role) is refused before any write.
    refused = runner.job(
        "policy-apply.yml", "apply", inputs={"allow_delete": False}, needs={"plan": plan}
    )
    assert refused.ran
    assert not refused.ok
    assert "**Apply failed (exit code 1).**" in refused.summary
    assert "--allow-delete" in refused.summary
    assert refused.steps["Upload the journal"].condition  # uploaded even so

    applied = runner.job(
        "policy-apply.yml", "apply", inputs={"allow_delete": True}, needs={"plan": plan}
    )
    assert applied.ok, applied.log
    assert applied.steps["apply"].outputs["exit-code"] == "0"
    assert "**Apply: 4 applied, 3 unchanged, 0 stale, 0 failed" in applied.summary
    [journal] = [v for k, v in artifacts.stored.items() if k.startswith("policysync-journal-")]
    [run] = {name.split("/")[0] for name in journal if "/" in name}
    assert f"{run}/run.json" in journal
    assert len(journal) == 6  # run.json and the four organizations applied; and .lock
    assert ".lock" in journal  # the journal folder's lock (runlock.py), empty when free
    assert (workspace / ".policysync" / "journal" / run / "run.json").is_file()

    again = runner.job("policy-apply.yml", "plan")  # live now matches: nothing to approve
    assert again.ok, again.log
    assert again.outputs == {"changes": "false"}
    assert "No changes." in again.summary
    assert not runner.job(
        "policy-apply.yml", "apply", inputs={"allow_delete": True}, needs={"plan": again}
    ).ran


# action.yml


@pytest.mark.parametrize(
    ("command", "args", "allowed", "code", "ok"),
    [
        ("validate", "--format github", "0", "0", True),
        ("validate", "--strict --format json", "0", "0", True),
        ("validate", "policies/orgs/missing.json", "0", "1", False),
        ("validate", "policies/orgs/missing.json", "0 1", "1", True),
    ],
)
def test_composite_action_runs_the_command_and_reports_its_exit_code(
    runner: Runner, command: str, args: str, allowed: str, code: str, ok: bool
) -> None:
    # The install step (pip) is left out: this virtual environment stands in for its venv.
    inputs = {"command": command, "args": args, "allowed-exit-codes": allowed}
    job = runner.action(
        ROOT / "action.yml",
        inputs,
        skip={"Install policysync"},
        prepare=lambda temp: (temp / "policysync-venv").symlink_to(VENV),
    )
    assert job.steps["run"].outputs == {"exit-code": code}
    assert job.ok is ok, job.log
    if not ok:
        assert f"::error title=policysync {command}::exit code {code}" in job.log

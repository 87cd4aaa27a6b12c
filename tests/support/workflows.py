"""The GitHub workflows and the composite action, run as a runner runs them.

Each job's `run:` steps are taken verbatim from the YAML and run with bash, in order, in a
real git repository, with the runner's files and variables (`GITHUB_STEP_SUMMARY`,
`GITHUB_OUTPUT`, `GITHUB_ENV`, `GITHUB_PATH`, `GITHUB_WORKSPACE`, `RUNNER_TEMP`...), the
`env:` they declare with their `${{ }}` values resolved from contexts the test supplies,
and their `if:` conditions evaluated (a job's, against the results of the jobs it needs).

- Inputs: a workflow's `on.workflow_dispatch` or `on.workflow_call` inputs, their
  defaults applied and their types checked, as GitHub does. A caller's job
  (`uses: ./.github/workflows/X.yml`) is resolved by `Runner.call`: its `with:` evaluated
  in the caller's contexts, and the secrets it passes (none, `inherit` or a mapping).
- Secrets: a job's are those of the repository (a called workflow's: those its caller
  passed) and, when it names an environment, that environment's, which win (as on
  GitHub, where a called job that names an environment reads that environment's secrets).
- policysync is the one of this virtual environment, the providers are the bundled
  emulators on 127.0.0.1, and `gh` is a fake placed first on PATH (support/fake_gh.py).
- Steps with `uses:` are not run; the test's `uses` callable sees each (with its `with:`
  resolved) and stands in for the ones whose effect the next steps need (upload-artifact
  and download-artifact, through `Artifacts`).
"""

from __future__ import annotations

import fnmatch
import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from support import fake_gh

ROOT = Path(__file__).parent.parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
VENV = Path(sys.executable).parent.parent  # not resolved: the venv, not its base Python
REPOSITORY = "acme/policies"
POLICYSYNC_REPOSITORY = "acme/policysync"  # where the reusable workflows are called from
POLICYSYNC_SHA = "5f0c6a1e" * 5  # the commit they are called at
PR_NUMBER = 7
STEP_TIMEOUT = 60
EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>\d+)|(?P<op>==|!=|&&|\|\||!|\(|\)|,)"
    r"|(?P<name>[A-Za-z_][\w-]*(?:\.[\w-]+)*))"
)
STATUS_FUNCTIONS = re.compile(r"\b(always|success|failure|cancelled)\s*\(")
FORMAT_ARGUMENT = re.compile(r"\{(\d+)\}")
UNSET_IS_EMPTY = ("secrets", "steps", "needs", "vars")  # an unset one is the empty string


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


def triggers(document: dict[str, Any]) -> dict[str, Any]:
    on = document["on"]
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return dict.fromkeys(on)
    return dict(on)


def typed(definitions: dict[str, Any], given: dict[str, Any], where: str) -> dict[str, Any]:
    """Inputs as a workflow receives them: each given one checked against its type, the
    others their default; an unknown or a missing required one is an error."""
    unknown = set(given) - set(definitions)
    assert not unknown, f"{where}: no input {sorted(unknown)}"
    inputs: dict[str, Any] = {}
    for name, spec in definitions.items():
        spec = spec or {}
        kind = spec.get("type", "string")
        if name not in given:
            assert not spec.get("required"), f"{where}: the input {name} is required"
            default = spec.get("default")
            inputs[name] = {"boolean": False, "number": 0, "string": ""}[kind]
            if default is not None:
                inputs[name] = default
            continue
        value = given[name]
        python = {"boolean": bool, "number": (int, float), "string": str}[kind]
        ok = isinstance(value, python) and not (kind == "number" and isinstance(value, bool))
        assert ok, f"{where}: the input {name} is a {kind}, not {value!r}"
        inputs[name] = value
    return inputs


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
    environment: str | None = None  # the GitHub environment it named

    @property
    def log(self) -> str:
        return "".join(s.stdout + s.stderr for s in self.steps.values())

    @property
    def result(self) -> str:
        return "skipped" if not self.ran else "success" if self.ok else "failure"


@dataclass
class Call:
    """A caller's job that runs a reusable workflow: what it gives that workflow."""

    workflow: str  # the file name under .github/workflows/
    inputs: dict[str, Any]
    secrets: dict[str, str]
    permissions: dict[str, str]


Uses = Callable[[dict[str, Any], dict[str, Any], "Runner"], None]


class Runner:
    """Runs jobs of one repository checkout (`workspace`) the way a runner would."""

    def __init__(self, workspace: Path, scratch: Path, gh_state: Path, uses: Uses) -> None:
        self.workspace = workspace
        self.scratch = scratch
        self.gh_state = gh_state
        self.uses = uses
        self.secrets: dict[str, str] = {}  # the repository's
        self.environments: dict[str, dict[str, str]] = {}  # environment secrets, by name
        self.variables: dict[str, str] = {}  # the repository's variables (`vars`)
        self.hidden: set[str] = set()  # values no output, summary or log may show
        self.run_id = "4242"
        self.run_attempt = "1"
        self.ref_name = "main"
        self.sha = "0" * 40  # the commit the run was started for (`github.sha`)
        self.jobs_run = 0
        self.context: dict[str, Any] = {}
        assert (VENV / "bin" / "policysync").is_file(), "run pytest with .venv/bin/python"
        self.fakebin = scratch / "fakebin"
        self.fakebin.mkdir(parents=True, exist_ok=True)
        gh = self.fakebin / "gh"
        gh.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{Path(fake_gh.__file__)}" "$@"\n')
        gh.chmod(0o755)
        self.path = f"{self.fakebin}:{VENV / 'bin'}:/usr/local/bin:/usr/bin:/bin"

    # Expressions.

    def lookup(self, path: str) -> Any:
        head, *rest = path.split(".")
        value = self.context[head]
        for part in rest:
            if isinstance(value, dict) and part in value:
                value = value[part]
            elif head in UNSET_IS_EMPTY:
                return ""
            else:
                raise KeyError(f"the test gives no value for {path}")
        return value

    def evaluate(self, expression: str, failed: bool = False) -> Any:
        """A GitHub expression, through Python: literals, contexts, ==, !=, !, &&, ||,
        parentheses, format() and the status functions are all these workflows use
        (`a && b || c` gives a value, not a boolean, in both)."""
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
            "_format": lambda pattern, *values: FORMAT_ARGUMENT.sub(
                lambda m: text(values[int(m[1])]), pattern
            ),
        }
        return eval("".join(python), names)  # the text of our own workflows

    def interpolate(self, value: Any) -> str:
        return EXPRESSION.sub(lambda m: text(self.evaluate(m[1])), text(value))

    def value(self, value: Any) -> Any:
        """A `with:` value: one whole expression keeps its type (a boolean input passed
        on stays a boolean); a string around expressions is a string."""
        if not isinstance(value, str):
            return value
        whole = EXPRESSION.fullmatch(value.strip())
        return self.evaluate(whole[1]) if whole else self.interpolate(value)

    def condition(self, source: Any, failed: bool) -> bool:
        if source is None:
            return not failed
        inner = EXPRESSION.fullmatch(str(source).strip())
        expression = inner[1] if inner else str(source)
        if not STATUS_FUNCTIONS.search(expression):
            expression = f"success() && ({expression})"
        return bool(self.evaluate(expression, failed))

    # Callers of reusable workflows.

    def call(self, caller: str, inputs: dict[str, Any] | None = None) -> Call:
        """The one job of `caller` (a workflow of the repository, run with `inputs` as
        its workflow_dispatch inputs), which calls a reusable workflow of this
        repository: that workflow and what the job gives it."""
        document = load(WORKFLOWS / caller)
        (job,) = document["jobs"].values()
        target = job["uses"]
        assert target.startswith("./.github/workflows/"), target
        dispatch = (triggers(document).get("workflow_dispatch") or {}).get("inputs", {})
        self.begin(typed(dispatch, inputs or {}, caller), {})
        given = {k: self.value(v) for k, v in (job.get("with") or {}).items()}
        passed = job.get("secrets")
        if passed == "inherit":
            secrets = dict(self.secrets)
        else:
            secrets = {k: self.interpolate(v) for k, v in (passed or {}).items()}
        workflow = target.removeprefix("./.github/workflows/")
        called = triggers(load(WORKFLOWS / workflow))["workflow_call"] or {}
        return Call(
            workflow,
            typed(called.get("inputs", {}), given, workflow),
            secrets,
            job.get("permissions", {}),
        )

    def run(self, call: Call, **options: Any) -> dict[str, Job]:
        """Every job of a called workflow, in order, each given the jobs it needs."""
        jobs: dict[str, Job] = {}
        for job_id, job in load(WORKFLOWS / call.workflow)["jobs"].items():
            needs = job.get("needs", [])
            needs = [needs] if isinstance(needs, str) else needs
            jobs[job_id] = self.job(call, job_id, needs={n: jobs[n] for n in needs}, **options)
        return jobs

    # Jobs.

    def job(
        self,
        workflow: str | Call,
        job_id: str,
        *,
        inputs: dict[str, Any] | None = None,
        needs: dict[str, Job] | None = None,
        skip: Iterable[str] = (),
        prepare: Callable[[Path], None] | None = None,
    ) -> Job:
        """One job. `workflow` is a file name, or a Call (a called workflow, with the
        inputs and secrets its caller gives); a reusable workflow named by its file is
        run as called with `inputs` and no secrets. Steps named in `skip` are left out;
        `prepare` gets the runner's temp folder first."""
        if isinstance(workflow, str):
            document = load(WORKFLOWS / workflow)
            on = triggers(document)
            if "workflow_call" in on:
                definitions = (on["workflow_call"] or {}).get("inputs", {})
                workflow = Call(workflow, typed(definitions, inputs or {}, workflow), {}, {})
                inputs = None
            else:
                dispatch = (on.get("workflow_dispatch") or {}).get("inputs", {})
                inputs = typed(dispatch, inputs or {}, workflow) if dispatch else inputs or {}
        if isinstance(workflow, Call):
            assert inputs is None, "a called workflow's inputs are its caller's"
            document = load(WORKFLOWS / workflow.workflow)
            inputs, secrets = workflow.inputs, workflow.secrets
        else:
            secrets = self.secrets
        job = document["jobs"][job_id]
        environment = job.get("environment")
        if isinstance(environment, dict):
            environment = environment["name"]
        if environment is not None:  # its expressions read the inputs
            self.context = {"inputs": inputs or {}, "vars": dict(self.variables)}
            environment = self.interpolate(environment)
        needs = needs or {}
        temp = self.begin(inputs or {}, needs, secrets, environment)
        failed = any(n.result != "success" for n in needs.values())
        if not self.condition(job.get("if"), failed):
            return Job(ran=False)
        if prepare is not None:
            prepare(temp)
        shell = job.get("defaults", document.get("defaults", {})).get("run", {}).get("shell")
        env = {k: self.interpolate(v) for k, v in document.get("env", {}).items()}
        self.context["env"] = env
        env.update({k: self.interpolate(v) for k, v in job.get("env", {}).items()})
        steps = [s for s in job["steps"] if s.get("name") not in set(skip)]
        result = self.steps(steps, env, shell)
        result.outputs = {k: self.interpolate(v) for k, v in job.get("outputs", {}).items()}
        result.environment = environment
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
        return self.steps(steps, {"GITHUB_ACTION_PATH": str(path.parent)}, None)

    def begin(
        self,
        inputs: dict[str, Any],
        needs: dict[str, Job],
        secrets: dict[str, str] | None = None,
        environment: str | None = None,
    ) -> Path:
        """A job's contexts. Its secrets: those given (the repository's, unless it is
        called) and, when it names an environment, that environment's, which win."""
        self.jobs_run += 1
        temp = self.scratch / f"job{self.jobs_run}" / "runner-temp"
        temp.mkdir(parents=True)
        secrets = dict(self.secrets if secrets is None else secrets)
        if environment is not None:
            secrets.update(self.environments.get(environment, {}))
        self.context = {
            "secrets": secrets,
            "inputs": inputs,
            "vars": dict(self.variables),
            "needs": {k: {"outputs": v.outputs, "result": v.result} for k, v in needs.items()},
            "steps": {},
            "env": {},
            "runner": {"temp": str(temp), "os": "Linux"},
            "job": {
                "workflow_repository": POLICYSYNC_REPOSITORY,
                "workflow_sha": POLICYSYNC_SHA,
            },
            "github": {
                "token": "ghs_fake-token-for-tests",
                "repository": REPOSITORY,
                "server_url": "https://github.com",
                "ref": f"refs/heads/{self.ref_name}",
                "ref_name": self.ref_name,
                "run_id": self.run_id,
                "run_attempt": self.run_attempt,
                "sha": self.sha,
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
                given = {k: self.value(v) for k, v in step.get("with", {}).items()}
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
                "GITHUB_REF_NAME": self.ref_name,
                "GITHUB_RUN_ID": self.run_id,
                "GITHUB_SERVER_URL": "https://github.com",
                "RUNNER_TEMP": str(temp),
                fake_gh.FAKE_GH_STATE: str(self.gh_state),
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
            shown = process.stdout + process.stderr + summaries[-1]
            assert "Traceback" not in shown, process.stderr
            for value in self.hidden:
                assert value not in shown, "a secret was shown"
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
    """upload-artifact and download-artifact, across the jobs and runs of one test; the
    checkout of the workspace as a fresh runner's (untracked files gone); and a record of
    every `uses:` step seen, with its `with:` resolved."""

    def __init__(self) -> None:
        self.runs: dict[str, dict[str, dict[str, bytes]]] = {}  # run id -> name -> files
        self.stored: dict[str, dict[str, bytes]] = {}  # name -> files, the latest upload
        self.used: list[tuple[str, dict[str, Any]]] = []
        self.uploaded: set[tuple[str, str, str]] = set()  # run id, attempt, name

    def __call__(self, step: dict[str, Any], given: dict[str, Any], runner: Runner) -> None:
        self.used.append((step["uses"], given))
        action = step["uses"].split("@")[0]
        if action == "actions/checkout" and "path" not in given:
            # A job starts on a fresh runner: what an earlier job left (a journal, a
            # plan) is not there. The checkout of the workspace removes it.
            subprocess.run(["git", "clean", "-ffdxq"], cwd=runner.workspace, check=True)
            if given.get("ref"):  # that commit, as a detached HEAD
                subprocess.run(
                    ["git", "checkout", "-q", "--detach", given["ref"]],
                    cwd=runner.workspace,
                    check=True,
                )
        elif action == "actions/upload-artifact":
            source = runner.workspace / given["path"]  # an absolute path stays as it is
            base = source.parent if source.is_file() else source
            files = [source] if source.is_file() else sorted(source.rglob("*"))
            found = {str(f.relative_to(base)): f for f in files if f.is_file()}
            if given.get("include-hidden-files") is not True:  # hidden ones are left out
                found = {k: f for k, f in found.items() if not k.startswith(".") and "/." not in k}
            assert found or given.get("if-no-files-found") != "error", given
            if found:
                content = {k: f.read_bytes() for k, f in found.items()}
                upload = (runner.run_id, runner.run_attempt, given["name"])
                assert upload not in self.uploaded, "one artifact of a name per attempt"
                self.uploaded.add(upload)
                self.runs.setdefault(runner.run_id, {})[given["name"]] = content
                self.stored[given["name"]] = content
        elif action == "actions/download-artifact":
            run = text(given.get("run-id")) or runner.run_id
            if run != runner.run_id:
                assert given.get("github-token"), "another run's artifacts need a token"
            stored = self.runs.get(run, {})
            if "name" in given:
                assert given["name"] in stored, f"no artifact {given['name']} in run {run}"
                chosen = {given["name"]: stored[given["name"]]}
            else:
                chosen = {k: v for k, v in stored.items() if fnmatch.fnmatch(k, given["pattern"])}
            target = runner.workspace / given["path"]
            merge = "name" in given or given.get("merge-multiple") is True
            for name, files in sorted(chosen.items()):
                for relative, content in files.items():
                    path = target / relative if merge else target / name / relative
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(content)

    def uses_of(self, action: str) -> list[dict[str, Any]]:
        return [given for uses, given in self.used if uses.split("@")[0] == action]


def gh_calls(state: Path, *, mutating: bool = False) -> list[list[str]]:
    calls: list[list[str]] = json.loads(state.read_text())["calls"]
    reads = (["issue", "list"], ["api", "--paginate"], ["release", "view"])
    return [c for c in calls if not mutating or c[:2] not in reads]


def gh(state: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(state.read_text())
    return loaded


def github_files() -> list[Path]:
    return [*sorted(WORKFLOWS.glob("*.yml")), ROOT / "action.yml"]


def reusable_workflows() -> list[Path]:
    return [p for p in sorted(WORKFLOWS.glob("*.yml")) if "workflow_call" in triggers(load(p))]

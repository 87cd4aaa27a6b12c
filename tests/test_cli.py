"""The command line: exit codes, formats, options, and no traceback on any input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import click
import jsonschema
import pytest
from support.casefiles import CASES, case_dirs
from support.clirun import run

from policysync.cli import cli, main

ROOT = Path(__file__).parent.parent
SAMPLE = ROOT / "policies"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A writable copy of the sample policies."""
    shutil.copytree(SAMPLE, tmp_path / "policies")
    return tmp_path / "policies"


def test_sample_policies_are_valid(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["validate", str(SAMPLE), "--strict"], capsys)
    assert code == 0
    assert out.strip() == "10 files valid (7 organizations)."


def test_default_path_comes_from_policies_option_or_config(
    tree: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tree.parent)
    assert run(["validate"], capsys)[0] == 0
    tree.rename(tree.parent / "elsewhere")
    code, out, _ = run(["validate"], capsys)
    assert code == 1
    assert "project-missing" in out
    assert run(["validate", "--policies", "elsewhere"], capsys)[0] == 0
    (tree.parent / "pyproject.toml").write_text('[tool.policysync]\npolicies = "elsewhere"\n')
    assert run(["validate"], capsys)[0] == 0


def test_invalid_file_exits_1_with_a_located_message(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    finance = tree / "templates" / "finance.json"
    finance.write_text(finance.read_text().replace('"approve"', '"aprove"'))
    code, out, _ = run(["validate", str(tree)], capsys)
    assert code == 1
    first = out.splitlines()[0]
    assert first.startswith(f"{finance}:12:13: error[action-unknown] ")
    assert 'did you mean "approve"?' in first
    assert out.splitlines()[-1] == "1 error, 0 warnings in 10 files: invalid."


def test_warnings_fail_only_with_strict(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tree / "orgs" / "notes.txt").write_text("not a policy")
    code, out, _ = run(["validate", str(tree)], capsys)
    assert (code, out.splitlines()[-1]) == (0, "0 errors, 1 warning in 10 files: valid.")
    code, out, _ = run(["validate", str(tree), "--strict"], capsys)
    assert code == 1
    assert out.splitlines()[-1].endswith("invalid (--strict: warnings count as errors).")


def test_json_format_is_one_document_matching_its_schema(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tree / "orgs" / "acme.json").write_text("{")
    code, out, _ = run(["validate", str(tree), "--format", "json"], capsys)
    assert code == 1
    report = json.loads(out)
    schema = json.loads((ROOT / "schemas" / "validate-report.schema.json").read_text())
    jsonschema.validate(report, schema)
    assert report["valid"] is False
    assert [d["code"] for d in report["diagnostics"]] == ["json-syntax"]


def test_selected_file_is_checked_in_the_context_of_its_tree(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    globex = json.loads((tree / "orgs" / "globex.json").read_text())
    copy = tree / "orgs" / "globex-copy.json"
    copy.write_text(json.dumps(globex, indent=2))
    (tree / "orgs" / "hooli.json").write_text("not json")
    code, out, _ = run(["validate", str(copy), "--format", "json"], capsys)
    report = json.loads(out)
    assert code == 1
    assert report["files_checked"] == 1
    # the duplicate is found through the other files; hooli's error is not reported
    assert [(d["file"], d["code"]) for d in report["diagnostics"]] == [(str(copy), "org-duplicate")]
    assert str(tree / "orgs" / "globex.json") in report["diagnostics"][0]["message"]


def test_usage_errors_exit_1_not_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["validate", "--format", "yaml"], capsys)
    assert code == 1
    assert "Invalid value for '--format'" in err
    code, _, err = run(["validate", "no/such/path"], capsys)
    assert code == 1
    assert "does not exist" in err


def test_bad_config_is_reported_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "policysync.toml"
    config.write_text('policies = "policies"\n[limits]\nmax_roles_per_org = -1\n')
    code, _, err = run(["validate", str(SAMPLE), "--config", str(config)], capsys)
    assert code == 1
    assert f"{config}:3: `limits.max_roles_per_org`" in err
    config.write_text("[limits\n")
    code, _, err = run(["validate", str(SAMPLE), "--config", str(config)], capsys)
    assert code == 1
    assert "line 1" in err
    assert "Traceback" not in err


def test_limits_from_config_are_applied(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "policysync.toml"
    config.write_text("[limits]\nmax_roles_per_org = 3\n")
    code, out, _ = run(["validate", str(SAMPLE), "--config", str(config)], capsys)
    assert code == 1
    assert "error[too-many-roles] 4 roles, more than the limit of 3" in out


def test_github_format_escapes_workflow_command_properties(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    odd = tree / "orgs" / "a,b:c.json"
    odd.write_text('{"organization_id": "x", "org_policy": {"roles": [], "extra": 1}}')
    code, out, _ = run(["validate", str(tree), "--format", "github"], capsys)
    assert code == 1
    line = out.splitlines()[0]
    assert line.startswith(f"::error file={tree}/orgs/a%2Cb%3Ac.json,line=1,col=54,")
    assert ",title=policysync schema-unknown-field::" in line


def test_colour_only_on_a_terminal() -> None:
    from click.testing import CliRunner

    from policysync.cli import cli

    plain = CliRunner().invoke(cli, ["validate", str(SAMPLE)])
    coloured = CliRunner().invoke(cli, ["validate", str(SAMPLE)], color=True)
    assert "\x1b[" not in plain.output
    assert "\x1b[" in coloured.output


INVALID_CASES = [c for c in case_dirs() if not c.name.startswith("valid-")]


@pytest.mark.parametrize("case", INVALID_CASES, ids=lambda p: p.name)
def test_invalid_case_exits_1_cleanly_in_every_format(
    case: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = case / "policysync.toml"
    extra = ["--config", str(config)] if config.exists() else []
    for fmt in ("text", "json", "github"):
        code, out, err = run(["validate", str(case / "policies"), "--format", fmt, *extra], capsys)
        assert code == 1, (fmt, out, err)
        assert "Traceback" not in out + err
        assert "internal error" not in err
        assert out.strip()


def test_whole_corpus_in_a_real_process() -> None:
    """The installed console script, fed every case at once, ends cleanly with exit 1."""
    script = Path(sys.executable).parent / "policysync"
    args = [str(c / "policies") for c in sorted(CASES.iterdir()) if c.is_dir()]
    assert len(args) >= 40
    env = {**os.environ, "POLICYSYNC_DEBUG": ""}
    proc = subprocess.run(
        [str(script), "validate", *args], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.stderr == ""
    assert "invalid." in proc.stdout.splitlines()[-1]


def test_a_file_outside_the_tree_is_checked_against_the_policies_folder(
    tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    loose = tmp_path / "draft.json"
    loose.write_text(
        json.dumps(
            {
                "organization_id": "globex",
                "org_policy": {
                    "roles": [
                        {
                            "role_id": "r",
                            "description": "d",
                            "permissions": [{"resource_id": "x", "actions": ["y"]}],
                        }
                    ]
                },
            }
        )
    )
    code, out, _ = run(
        ["validate", str(loose), "--policies", str(tree), "--format", "json"], capsys
    )
    assert code == 1
    report = json.loads(out)
    assert report["files_checked"] == 1
    assert report["organizations"] == 1
    assert sorted(d["code"] for d in report["diagnostics"]) == ["org-duplicate", "resource-unknown"]
    assert {d["file"] for d in report["diagnostics"]} == {str(loose)}


def test_the_orgs_folder_stands_for_its_policies_root(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(["validate", str(tree / "orgs")], capsys)
    assert (code, out.strip()) == (0, "10 files valid (7 organizations).")


def test_policies_in_a_settings_file_are_relative_to_that_file(
    tree: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tree.parent / "ci").mkdir()
    (tree.parent / "ci" / "policysync.toml").write_text('policies = "../policies"\n')
    (tree / "orgs" / "acme.json").write_text("{")
    monkeypatch.chdir(tree.parent / "ci")
    code, out, _ = run(["validate", "--config", "policysync.toml"], capsys)
    assert code == 1
    assert out.startswith("../policies/orgs/acme.json:1:2: error[json-syntax]")
    monkeypatch.chdir(tree.parent)
    code, out, _ = run(["validate", "--config", "ci/policysync.toml"], capsys)
    assert out.startswith("policies/orgs/acme.json:1:2: error[json-syntax]")


def test_a_bug_is_an_internal_error_without_traceback_unless_debugging(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import policysync.commands.validate

    def broken(*args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(policysync.commands.validate, "validate", broken)
    monkeypatch.delenv("POLICYSYNC_DEBUG", raising=False)
    code, out, err = run(["validate", str(SAMPLE)], capsys)
    assert code == 1
    assert err.startswith("internal error: RuntimeError: boom\n")
    assert "Traceback" not in out + err
    monkeypatch.setenv("POLICYSYNC_DEBUG", "1")
    with pytest.raises(RuntimeError, match="boom"):
        main(["validate", str(SAMPLE)])


def test_the_command_flushes_its_output_and_keeps_its_exit_code() -> None:
    """`python -m policysync` and the console script: the output complete, the exit code
    kept, and a reader going away is no error."""
    module = [sys.executable, "-m", "policysync"]
    shown = subprocess.run([*module, "--version"], capture_output=True, text=True, timeout=60)
    assert (shown.returncode, shown.stdout.strip()) == (0, "policysync, version 0.1.0")
    bad = CASES / "sample-broken" / "policies"
    failed = subprocess.run(
        [*module, "validate", str(bad), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert failed.returncode == 1
    assert json.loads(failed.stdout)["valid"] is False  # the whole document arrived
    script = Path(sys.executable).parent / "policysync"
    args = [str(c / "policies") for c in sorted(CASES.iterdir()) if c.is_dir()]
    with subprocess.Popen(
        [str(script), "validate", *args, "--format", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as reader_gone:
        assert reader_gone.stdout is not None
        reader_gone.stdout.read(10)
        reader_gone.stdout.close()
        _, err = reader_gone.communicate(timeout=60)
    assert reader_gone.returncode == 1
    assert b"Traceback" not in err
    assert b"internal error" not in err


def test_the_command_exits_the_usual_way_under_a_profiler(tmp_path: Path) -> None:
    """Skipping teardown would lose what cProfile (or coverage) collected: under one, the
    command exits normally and the profile is written (cProfile itself swallows the exit
    code)."""
    profile = tmp_path / "plan.prof"
    bad = CASES / "sample-broken" / "policies"
    argv = [sys.executable, "-m", "cProfile", "-o", str(profile), "-m", "policysync"]
    done = subprocess.run([*argv, "validate", str(bad)], capture_output=True, text=True, timeout=60)
    assert "error" in done.stdout  # the findings, flushed
    assert profile.stat().st_size > 0


@pytest.mark.parametrize("variable", ["STYTCH_PROJECT_ID", "STYTCH_SECRET", "STYTCH_BASE_URL"])
def test_a_credential_that_is_not_utf8_or_breaks_a_header_names_its_variable(
    variable: str, tree: Path
) -> None:
    """Bytes that are not UTF-8 in the environment (which POSIX allows) and a line break
    (which would inject a header) are config errors naming the variable, the value not
    shown: not an internal error."""
    good = {
        b"STYTCH_PROJECT_ID": b"project-test-11111111-2222-4333-8444-555555555555",
        b"STYTCH_SECRET": b"secret-test-c2VjcmV0LW5vdC11dGY4",
        b"STYTCH_BASE_URL": b"http://127.0.0.1:9/",  # never reached
    }
    name = variable.encode()
    for bad, refusal in ((b"\xff\xfe", b"is not valid UTF-8 text"), (b"\r\nX: 1", b"holds a")):
        value = good[name][:12] + bad + good[name][12:]
        env = {**os.environb, **good, name: value, b"POLICYSYNC_DEBUG": b""}
        done = subprocess.run(
            [sys.executable, "-m", "policysync", "plan"],
            cwd=tree.parent,
            env=env,
            capture_output=True,
            timeout=60,
        )
        assert done.returncode == 1, done.stderr
        assert done.stderr.startswith(b"error: " + name + b" " + refusal), done.stderr
        assert b"internal error" not in done.stderr
        assert good[name][12:] not in done.stdout + done.stderr


HOSTILE_NAMES = (
    "a\n0 errors, 0 warnings in 1 file: valid.\nb.json",
    "\x1b[31mred\x1b[0m.json",
    "\u202enosj.json",
    "carriage\rreturn.json",
)


def raw_controls(text: str) -> list[str]:
    """Characters a terminal would act on or that reorder text, but the line breaks."""
    return [c for c in text if not c.isprintable() and c != "\n"]


def test_file_names_with_control_characters_cannot_forge_validate_output(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A newline in a file name would forge a summary line; an escape would colour the
    terminal; a right-to-left mark would reverse what follows it."""
    bad = '{"organization_id": "x", "org_policy": {"roles": [], "extra\\n::error::x": 1}}'
    for file_name in HOSTILE_NAMES:
        (tree / "orgs" / file_name).write_text(bad)
    for fmt in ("text", "github"):
        code, out, _ = run(["validate", str(tree), "--format", fmt], capsys)
        assert code == 1
        assert raw_controls(out) == []
        lines = out.splitlines()
        assert len(lines) == len(HOSTILE_NAMES) + 1  # a line per file, then the summary
        assert [line for line in lines if line[:1].isdigit()] == [lines[-1]]  # no forged one
        assert lines[-1].endswith("invalid.")
        if fmt == "github":
            assert all(line.startswith("::error file=") for line in lines[:-1])
    code, out, _ = run(["validate", str(tree), "--format", "json"], capsys)
    files = {Path(d["file"]).name for d in json.loads(out)["diagnostics"]}
    assert files == set(HOSTILE_NAMES)  # JSON stays exact


def test_top_level_help_lists_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["--help"], capsys)
    assert code == 0
    lines = [line.strip() for line in out.splitlines()]
    start = lines.index("Exit codes:")
    codes = [line.split()[0] for line in lines[start + 1 : start + 5]]
    assert codes == ["0", "1", "2", "130"]
    assert any("--detailed-exitcode" in line and "drift" in line for line in lines[start:])
    assert 'eval "$(_POLICYSYNC_COMPLETE=bash_source policysync)"' in lines


def _options(command: click.Command) -> list[str]:
    return [o for p in command.params for o in p.opts if o.startswith("--") and len(o) > 4]


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_a_mistyped_option_gets_the_closest_one(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """click says "Did you mean" for every command's options: a mistyped long option
    (one letter dropped) gets the option meant."""
    options = _options(cli.commands[name])
    assert options
    for option in options:
        mistyped = option[:4] + option[5:]
        code, out, err = run([name, mistyped], capsys)
        assert (code, out) == (1, "")
        assert f"No such option '{mistyped}'" in err
        assert f"'{option}'" in err.split("Did you mean", 1)[1], (name, option)


def test_a_mistyped_command_gets_the_closest_one(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["valdate", "policies"], capsys)
    assert (code, out) == (1, "")
    assert "No such command 'valdate'. Did you mean 'validate'?" in err


@pytest.mark.parametrize(
    ("shell", "marker"),
    [
        ("bash", "complete -o nosort -F _policysync_completion policysync"),
        ("zsh", "compdef _policysync_completion policysync"),
        ("fish", "complete --no-files --command policysync"),
    ],
)
def test_the_shell_completion_scripts_are_generated(shell: str, marker: str) -> None:
    """As the README says to install them: the console script, run with
    _POLICYSYNC_COMPLETE=<shell>_source, prints the script, which asks the console
    script again (with <shell>_complete) for each completion."""
    script = Path(sys.executable).parent / "policysync"
    env = {**os.environ, "_POLICYSYNC_COMPLETE": f"{shell}_source"}
    proc = subprocess.run([str(script)], capture_output=True, text=True, env=env, timeout=60)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert marker in proc.stdout
    assert f"_POLICYSYNC_COMPLETE={shell}_complete" in proc.stdout


def test_bash_completes_commands_and_options() -> None:
    script = Path(sys.executable).parent / "policysync"

    def complete(line: str) -> list[str]:
        words = line.split(" ")
        env = {
            **os.environ,
            "_POLICYSYNC_COMPLETE": "bash_complete",
            "COMP_WORDS": line,
            "COMP_CWORD": str(len(words) - 1),
        }
        proc = subprocess.run([str(script)], capture_output=True, text=True, env=env, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.splitlines()

    assert complete("policysync val") == ["plain,validate"]
    assert complete("policysync plan --detailed") == ["plain,--detailed-exitcode"]
    assert "plain,markdown" in complete("policysync plan --format ")

"""`policysync test` end to end through the CLI, on copies of the sample policies: exit
codes, PATHs, no tests, the JSON report against its schema, well-formed JUnit XML, and
hostile test files (each reported like any policy file, never a traceback). The
renderings themselves are golden cases: tests/golden/test/."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import jsonschema
import pytest
from support.clirun import run

ROOT = Path(__file__).parent.parent.parent
TESTS = Path("policies/tests")
SAMPLE = TESTS / "finance.json"


def write(path: Path, document: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2))
    return path


def one_test(**fields: Any) -> dict[str, Any]:
    test = {"name": "t", "organization": "acme", "roles": ["auditor"]}
    return {"tests": [test | fields]}


def codes(err: str) -> list[str]:
    return [line.split("[", 1)[1].split("]", 1)[0] for line in err.splitlines() if "[" in line]


def test_the_sample_tests_pass(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["test"], capsys) == (0, "4 tests, 11 assertions: 0 failed\n", "")


def test_a_failing_assertion_exits_1_at_its_line(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(TESTS / "audit.json", one_test(deny=[{"resource_id": "audit-log", "action": "export"}]))
    code, out, err = run(["test"], capsys)
    assert (code, err) == (1, "")
    assert out.splitlines() == [
        "policies/tests/audit.json:10:9: FAIL t (acme): deny audit-log:export: allowed: "
        "role auditor (policies/orgs/acme.json) grants it",
        "5 tests, 12 assertions: 1 failed",
    ]


def test_paths_name_test_files_or_folders_of_them(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    elsewhere = write(
        workdir / "more" / "x.json", one_test(allow=[{"resource_id": "invoices", "action": "read"}])
    )
    write(workdir / "more" / ".hidden.json", {"not": "read"})
    assert run(["test", str(elsewhere.parent)], capsys) == (
        0,
        "1 test, 1 assertion: 0 failed\n",
        "",
    )
    code, out, _ = run(["test", str(SAMPLE), str(elsewhere), "--format", "json"], capsys)
    assert code == 0
    assert json.loads(out)["files"] == [str(SAMPLE), str(elsewhere)]


def test_no_test_file_is_a_note_and_no_failure(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.rmtree(TESTS)
    code, out, err = run(["test", "--format", "junit"], capsys)
    assert code == 0
    assert err == (
        "note: no policy tests in policies/tests: add a JSON file of tests there "
        '(README.md, "Policy tests")\n'
    )
    assert ElementTree.fromstring(out).get("tests") == "0"


def test_the_json_report_is_described_by_its_schema(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(TESTS / "audit.json", one_test(allow=[{"resource_id": "invoices", "action": "void"}]))
    code, out, _ = run(["test", "--format", "json"], capsys)
    report = json.loads(out)
    schema = json.loads((ROOT / "schemas" / "test-report.schema.json").read_text())
    jsonschema.validate(report, schema)
    assert (code, report["passed"], report["summary"]["failed"]) == (1, False, 1)
    [failed] = [a for t in report["tests"] for a in t["assertions"] if not a["passed"]]
    assert failed["granted_by"] == []
    assert failed["explanation"].startswith("denied: no role the member holds grants it")


def test_an_invalid_organization_file_stops_the_run(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "policies/orgs/acme.json").write_text("{")
    code, out, err = run(["test", "--format", "json"], capsys)
    assert (code, out) == (1, "")
    assert codes(err) == ["json-syntax"]
    assert err.splitlines()[-1] == "1 error, 0 warnings in 10 files: invalid."


HOSTILE: list[tuple[str, bytes, str]] = [
    ("broken JSON", b'{"tests": [', "json-syntax"),
    ("a top-level array", b"[]", "schema-type"),
    ("tests as a string", b'{"tests": "all"}', "schema-type"),
    ("UTF-16", '{"tests": []}'.encode("utf-16"), "file-encoding"),
    ("empty", b"  \n", "file-empty"),
    ("nesting", b'{"tests": [' + b"[" * 5000 + b"]" * 5000 + b"]}", "json-too-deep"),
    ("a huge file", b'{"tests": [], "x": "' + b"a" * 2_000_000 + b'"}', "file-too-large"),
    ("a duplicate key", b'{"tests": [], "tests": []}', "json-duplicate-key"),
]


@pytest.mark.parametrize(("content", "code"), [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE])
def test_hostile_test_files_are_diagnostics(
    content: bytes, code: str, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (TESTS / "hostile.json").write_bytes(content)
    for fmt in ("text", "junit"):
        exit_code, out, err = run(["test", "--format", fmt], capsys)
        assert exit_code == 1
        assert codes(err) == [code]
        assert "Traceback" not in err
    root = ElementTree.fromstring(out)  # well-formed, and says why no test ran
    assert root.get("errors") == "1"
    assert f"{code}:" in (root.findtext(".//error") or "")


def test_junit_escapes_what_xml_cannot_hold(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = '<x a="1"> & ]]> \u0000\u0007\x1b[31m\ufffe'
    write(
        TESTS / "t.json",
        one_test(name=name, allow=[{"resource_id": "documents", "action": "read"}]),
    )
    code, out, _ = run(["test", "--format", "junit", str(TESTS / "t.json")], capsys)
    assert code == 1
    case = ElementTree.fromstring(out).find(".//testcase")
    assert case is not None
    assert case.get("name") == '<x a="1"> & ]]> \\x00\\x07\\x1b[31m\\ufffe'


def test_validate_reports_a_test_naming_a_role_the_organization_lacks(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(TESTS / "t.json", one_test(roles=["finance-clerk"]))  # stark-industries' role
    code, out, _ = run(["validate", str(TESTS / "t.json")], capsys)
    assert code == 1
    assert out.splitlines() == [
        'policies/tests/t.json:7:9: error[test-role-unknown] no role "finance-clerk" in the '
        "project (policies/project.json) or acme (policies/orgs/acme.json): name a role they "
        "have (at /tests/0/roles/0)",
        "1 error, 0 warnings in 1 file: invalid.",
    ]


def test_fmt_leaves_test_files_as_written(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = SAMPLE.read_bytes()
    assert run(["fmt", str(SAMPLE)], capsys)[0] == 0
    assert run(["fmt"], capsys)[0] == 0
    assert SAMPLE.read_bytes() == before

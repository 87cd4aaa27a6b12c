"""House rules: the settings' `house_rules` globs of JSON Schemas, applied to every
organization file of both providers, each violation located in the file."""

from __future__ import annotations

import json
import shutil
import textwrap
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from support.clirun import run

from policysync import validate as validate_module
from policysync.config import load_settings
from policysync.validate import validate

ROOT = Path(__file__).parent.parent
KEBAB = {
    "title": "role ids in kebab case",
    "properties": {
        "org_policy": {
            "properties": {
                "roles": {
                    "items": {
                        "required": ["description"],
                        "properties": {"role_id": {"pattern": "^[a-z]+(-[a-z]+)*$"}},
                    }
                }
            }
        }
    },
}
DESCRIBED = {
    "title": "every role described",
    "properties": {"roles": {"items": {"required": ["description"]}}},
}


def write(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) if not isinstance(data, str) else data)
    return path


def stytch_repo(tmp_path: Path, rules: str = '["house/*.json"]') -> Path:
    shutil.copytree(ROOT / "policies", tmp_path / "policies")
    write(tmp_path / "policysync.toml", f"# settings\nhouse_rules = {rules}\n")
    return tmp_path


def set_role(tree: Path, org: str, index: int, **fields: Any) -> None:
    path = tree / "policies" / "orgs" / f"{org}.json"
    doc = json.loads(path.read_text())
    role = doc["org_policy"]["roles"][index]
    for key, value in fields.items():
        if value is None:
            del role[key]
        else:
            role[key] = value
    write(path, doc)


def test_the_samples_pass_their_house_rules(capsys: pytest.CaptureFixture[str]) -> None:
    for config, rules, files in [
        ("pyproject.toml", "policies/house", 10),
        ("examples/zenml/policysync.toml", "examples/zenml/house", 4),
    ]:
        settings = load_settings(ROOT / config)
        assert settings.house_rules == (str(ROOT / rules / "*.json"),)
        code, out, err = run(["validate", "--config", str(ROOT / config)], capsys)
        assert (code, err) == (0, ""), out
        assert out.startswith(f"{files} files valid")


def test_violations_are_located_with_the_title_and_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = stytch_repo(tmp_path)
    write(repo / "house" / "kebab.json", KEBAB)
    set_role(repo, "acme", 0, role_id="Auditor")
    set_role(repo, "globex", 0, description=None)
    code, out, _ = run(["validate", "--config", str(repo / "policysync.toml")], capsys)
    acme, globex = (
        repo / "policies" / "orgs" / "acme.json",
        repo / "policies" / "orgs" / "globex.json",
    )
    assert code == 1
    lines = [line for line in out.splitlines() if "house-rule" in line]
    # the role's `role_id` value in acme.json, and the role object missing its description
    assert lines == [
        f"{acme}:10:20: error[house-rule] role ids in kebab case: 'Auditor' does not match "
        "'^[a-z]+(-[a-z]+)*$' (at /org_policy/roles/0/role_id)",
        f"{globex}:6:7: error[house-rule] role ids in kebab case: 'description' is a required "
        "property (at /org_policy/roles/0)",
    ]
    code, out, _ = run(
        ["validate", "--format", "json", "--config", str(repo / "policysync.toml")], capsys
    )
    found = [d for d in json.loads(out)["diagnostics"] if d["code"] == "house-rule"]
    assert [(d["line"], d["column"]) for d in found] == [(10, 20), (6, 7)]


def test_an_invalid_schema_and_a_glob_matching_nothing_are_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = stytch_repo(tmp_path, '["house/*.json", "missing/*.json"]')
    write(repo / "house" / "bad.json", '{\n  "title": "bad",\n  "type": "objekt"\n}\n')
    write(repo / "house" / "draft7.json", {"$schema": "http://json-schema.org/draft-07/schema#"})
    write(repo / "house" / "good.json", KEBAB)
    set_role(repo, "acme", 0, role_id="Auditor")
    code, out, _ = run(["validate", "--config", str(repo / "policysync.toml")], capsys)
    assert code == 1
    assert f"{repo / 'house' / 'bad.json'}:3:11: error[house-rule-invalid] not a valid JSON " in out
    assert "'objekt' is not valid under any of the given schemas" in out
    assert (
        f"{repo / 'house' / 'draft7.json'}:2:14: error[house-rule-invalid] `$schema` names" in out
    )
    assert (
        f"{repo / 'policysync.toml'}:2:1: error[house-rule-invalid] house_rules: "
        f'"{repo / "missing" / "*.json"}" matches no file' in out
    )
    assert "error[house-rule] role ids in kebab case: 'Auditor'" in out  # the valid one applies


def test_a_house_rule_file_that_is_not_json_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = stytch_repo(tmp_path)
    write(repo / "house" / "broken.json", '{"title": ')
    code, out, _ = run(["validate", "--config", str(repo / "policysync.toml")], capsys)
    assert code == 1
    assert f"{repo / 'house' / 'broken.json'}:1:10: error[json-syntax]" in out


def test_invalid_rules_are_reported_when_one_file_is_validated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = stytch_repo(tmp_path, '["nothing/*.json"]')
    file = repo / "policies" / "orgs" / "acme.json"
    code, out, _ = run(["validate", "--config", str(repo / "policysync.toml"), str(file)], capsys)
    assert code == 1
    assert "error[house-rule-invalid] house_rules:" in out


def test_zenml_files_are_checked_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(ROOT / "examples" / "zenml", tmp_path / "zenml")
    config = tmp_path / "zenml" / "policysync.toml"
    write(tmp_path / "zenml" / "house" / "roles-described.json", DESCRIBED)
    org = next((tmp_path / "zenml" / "policies" / "orgs").glob("*.json"))
    doc = json.loads(org.read_text())
    del doc["roles"][0]["description"]
    write(org, doc)
    code, out, _ = run(["validate", "--config", str(config)], capsys)
    assert code == 1
    assert f"{org}:5:5: error[house-rule] every role described: 'description' is a " in out


def test_the_parallel_path_applies_the_rules_as_the_sequential_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = stytch_repo(tmp_path)
    write(repo / "house" / "kebab.json", KEBAB)
    set_role(repo, "acme", 0, role_id="Auditor")
    orgs = repo / "policies" / "orgs"
    for i in range(12):
        doc = json.loads((orgs / "acme.json").read_text())
        doc["organization_id"] = f"copy-{i:02}"
        write(orgs / f"copy-{i:02}.json", doc)
    settings = load_settings(repo / "policysync.toml")
    sequential = validate([], settings, strict=False)
    monkeypatch.setattr(validate_module, "PARALLEL_MIN_FILES", 1)
    pools: list[int] = []

    class RecordingPool(ProcessPoolExecutor):
        def __init__(self, max_workers: int, **kwargs: Any) -> None:
            pools.append(max_workers)
            super().__init__(max_workers, **kwargs)

    monkeypatch.setattr(validate_module, "ProcessPoolExecutor", RecordingPool)
    parallel = validate([], settings, strict=False)
    assert parallel == sequential
    assert sum(d.code == "house-rule" for d in parallel.diagnostics) == 13


def test_paths_are_relative_to_the_settings_file(tmp_path: Path) -> None:
    config = write(
        tmp_path / "sub" / "policysync.toml",
        textwrap.dedent("""\
        provider = "stytch"

        house_rules = ["rules/**/*.json", "/abs/x.json"]
        """),
    )
    settings = load_settings(config)
    assert settings.house_rules == (
        str(tmp_path / "sub" / "rules" / "**" / "*.json"),
        "/abs/x.json",
    )
    assert settings.house_rules_origin == (str(config), 3)


def test_a_ref_to_another_schema_is_reported_once_at_the_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = stytch_repo(tmp_path)
    write(repo / "house" / "ref.json", {"title": "refs", "$ref": "other.json"})
    code, out, _ = run(["validate", "--config", str(repo / "policysync.toml")], capsys)
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith(f"{repo / 'house' / 'ref.json'}:1:1: error[house-rule-invalid] ")
    assert "other.json" in lines[0]
    assert "make every `$ref` local to the schema" in lines[0]
    assert lines[1:] == ["1 error, 0 warnings in 10 files: invalid."]

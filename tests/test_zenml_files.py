"""ZenML Pro policy files (`provider = "zenml"`): settings, the published schemas, the
vocabulary, `validate` through the CLI, and the clear refusal of the live commands.
The diagnostics themselves are golden cases: tests/golden/validate/*zenml*."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.casefiles import CASES
from support.clirun import run
from test_schemas import SCHEMA_DIR, anything, committed, maybe, obj, pydantic_accepts

from policysync.config import load_settings
from policysync.errors import ConfigError
from policysync.zenml_models import ZenmlOrgFile, ZenmlPermissionsFile
from policysync.zenml_vocabulary import SYSTEM_MANAGED_ROLES, vocabulary

VALID = CASES / "valid-zenml"


def zenml_tree(tmp_path: Path) -> Path:
    """A copy of the valid ZenML case: its settings file and policies folder."""
    for path in VALID.rglob("*"):
        if path.is_file():
            target = tmp_path / path.relative_to(VALID)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    return tmp_path / "policysync.toml"


def test_settings_accept_the_zenml_provider(tmp_path: Path) -> None:
    config = tmp_path / "policysync.toml"
    config.write_text('provider = "zenml"\n')
    assert load_settings(config).provider == "zenml"
    assert load_settings(None).provider == "stytch"


def test_settings_name_an_unknown_provider_with_its_line(tmp_path: Path) -> None:
    config = tmp_path / "policysync.toml"
    config.write_text('policies = "policies"\nprovider = "zenmI"\n')
    with pytest.raises(ConfigError, match=r"policysync.toml:2: `provider`.*'stytch' or 'zenml'"):
        load_settings(config)


def test_valid_tree_validates_through_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = zenml_tree(tmp_path)
    code, out, err = run(["validate", "--config", str(config)], capsys)
    assert (code, err) == (0, "")
    assert out == "3 files valid (2 organizations).\n"


def test_the_orgs_folder_and_one_file_are_checked_in_their_tree(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = zenml_tree(tmp_path)
    (tmp_path / "policies" / "orgs" / "copy.json").write_text(
        '{"organization_id": "globex", "roles": []}'
    )
    orgs = tmp_path / "policies" / "orgs"
    for path in (orgs, orgs / "copy.json"):
        code, out, _ = run(["validate", "--config", str(config), str(path)], capsys)
        assert code == 1
        assert f"{orgs / 'copy.json'}:1:21: error[org-duplicate]" in out


def test_a_stytch_tree_is_not_a_zenml_tree(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "policysync.toml"
    config.write_text(f'provider = "zenml"\npolicies = "{Path("policies").absolute()}"\n')
    code, out, _ = run(["validate", "--config", str(config)], capsys)
    assert code == 1
    assert 'error[schema-unknown-field] unknown field "org_policy"' in out


@pytest.mark.parametrize(
    "argv",
    [
        ["plan"],
        ["apply", "--auto-approve"],
        ["drift"],
        ["export"],
        ["rollback", "20260101T000000Z-abc"],
    ],
    ids=lambda a: " ".join(a),
)
def test_live_commands_without_the_zenml_key_say_which_variable_to_set(
    argv: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = zenml_tree(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ZENML_PRO_API_KEY", raising=False)
    monkeypatch.setenv("STYTCH_SECRET", "secret-test-not-the-zenml-key-0123")  # another's
    code, out, err = run([*argv, "--config", str(config)], capsys)
    assert code == 1
    assert out == ""
    assert err.startswith("error: ZENML_PRO_API_KEY is not set: set it to a ZenML Pro ")
    assert "Traceback" not in err
    assert not (tmp_path / ".policysync").exists()


def test_vocabulary_builtin_and_declared() -> None:
    builtin = vocabulary()
    assert builtin["organization"].resources == builtin["organization"].actions == frozenset()
    assert builtin["workspace"] == builtin["project"]
    assert "pipeline_run" in builtin["workspace"].resources
    assert "read_secret_value" in builtin["project"].actions
    declared = ZenmlPermissionsFile.model_validate(
        {
            "organization": {"resources": ["team"], "actions": ["read"]},
            "project": {"actions": ["x"]},
        }
    )
    words = vocabulary(declared)
    assert words["organization"].resources == {"team"}
    assert words["project"].actions == builtin["project"].actions | {"x"}
    assert words["workspace"] == builtin["workspace"]


def test_fourteen_system_managed_roles() -> None:
    assert sum(len(names) for names in SYSTEM_MANAGED_ROLES.values()) == 14


def test_valid_case_points_editors_at_the_zenml_schemas() -> None:
    for path, name in [
        (VALID / "policies" / "permissions.json", "zenml-permissions"),
        *((p, "zenml-org-roles") for p in sorted((VALID / "policies" / "orgs").glob("*.json"))),
    ]:
        document = json.loads(path.read_text())
        assert (path.parent / document["$schema"]).resolve() == SCHEMA_DIR.resolve() / (
            f"{name}.schema.json"
        )
        jsonschema.validate(document, committed(name))


def test_org_roles_schema_offers_levels_resources_and_actions_for_completion() -> None:
    role = committed("zenml-org-roles")["$defs"]["ZenmlRole"]["properties"]
    assert role["level"]["examples"] == ["organization", "workspace", "project"]
    permission = committed("zenml-org-roles")["$defs"]["ZenmlPermission"]["properties"]
    assert "pipeline_run" in permission["resource"]["examples"]
    assert all(p.get("description") for p in [*role.values(), *permission.values()])


strs = st.text(max_size=4)
permission = obj({"resource": strs, "action": strs}, {})
role = obj(
    {"name": strs, "level": strs, "permissions": st.lists(permission, max_size=2)},
    {"description": strs},
)
org_file = obj({"organization_id": strs, "roles": st.lists(role, max_size=2)}, {"$schema": strs})
# `obj` sometimes drops a "required" field: here all are optional, so both ways are valid.
level = obj({"resources": st.lists(maybe(strs), max_size=2)}, {"actions": st.lists(strs)})
permissions_file = obj({"organization": level}, {"$schema": strs, "workspace": level})


@settings(max_examples=300, deadline=None)
@given(org_file)
def test_org_roles_schema_and_model_agree(doc: Any) -> None:
    schema_ok = jsonschema.Draft202012Validator(committed("zenml-org-roles")).is_valid(doc)
    assert schema_ok == pydantic_accepts(ZenmlOrgFile, doc)


@settings(max_examples=300, deadline=None)
@given(permissions_file | anything)
def test_permissions_schema_and_model_agree(doc: Any) -> None:
    schema_ok = jsonschema.Draft202012Validator(committed("zenml-permissions")).is_valid(doc)
    assert schema_ok == pydantic_accepts(ZenmlPermissionsFile, doc)

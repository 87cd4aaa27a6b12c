"""The published schemas: up to date with the models, and accepting exactly what they accept."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError
from support.clirun import run

from policysync import schemas
from policysync.models import OrgPolicyFile, ProjectPolicyFile

SCHEMA_DIR = Path(__file__).parent.parent / "schemas"


def committed(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SCHEMA_DIR / schemas.filename(name)).read_text())
    return loaded


def test_committed_schemas_are_generated_from_the_models() -> None:
    assert schemas.stale(SCHEMA_DIR) == [], "run `make schemas` and commit the result"


def test_stale_detects_an_edited_schema(tmp_path: Path) -> None:
    for name in schemas.SCHEMA_MODELS:
        (tmp_path / schemas.filename(name)).write_text(schemas.render(name))
    assert schemas.stale(tmp_path) == []
    (tmp_path / "org-policy.schema.json").write_text("{}")
    assert schemas.stale(tmp_path) == [str(tmp_path / "org-policy.schema.json")]


@pytest.mark.parametrize("name", sorted(schemas.SCHEMA_MODELS))
def test_schema_is_draft_2020_12_with_an_id(name: str) -> None:
    schema = committed(name)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == schemas.schema_id(name)
    jsonschema.Draft202012Validator.check_schema(schema)


def test_sample_files_point_editors_at_the_schemas() -> None:
    root = Path(__file__).parent.parent / "policies"
    for path in [root / "project.json", *sorted((root / "orgs").glob("*.json"))]:
        ref = json.loads(path.read_text())["$schema"]
        assert (path.parent / ref).resolve().parent == SCHEMA_DIR.resolve()
        name = "project-policy" if path.name == "project.json" else "org-policy"
        jsonschema.validate(json.loads(path.read_text()), committed(name))


# Documents near the models' shape: each value is either of the right type or any JSON.
anything = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=3),
    lambda c: st.lists(c, max_size=2) | st.dictionaries(st.text(max_size=3), c, max_size=2),
    max_leaves=4,
)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly the right shape, sometimes anything at all."""
    return st.one_of(strategy, strategy, strategy, strategy, anything)


def obj(required: dict[str, Any], optional: dict[str, Any]) -> st.SearchStrategy[Any]:
    extra = st.just({}) | st.dictionaries(st.sampled_from(["extra", "Roles"]), anything, max_size=1)
    base = st.fixed_dictionaries(
        {k: maybe(v) for k, v in required.items()},
        optional={k: maybe(v) for k, v in optional.items()},
    )
    dropped = st.sets(st.sampled_from(sorted(required)), max_size=1) | st.just(set())
    return maybe(
        st.tuples(base, extra, dropped).map(
            lambda t: {k: v for k, v in {**t[0], **t[1]}.items() if k not in t[2]}
        )
    )


strs = st.text(max_size=4)
permission = obj({"resource_id": strs, "actions": st.lists(maybe(strs), max_size=2)}, {})
role = obj(
    {"role_id": strs, "permissions": st.lists(permission, max_size=2)}, {"description": strs}
)
org_file = obj(
    {"organization_id": strs, "org_policy": obj({"roles": st.lists(role, max_size=2)}, {})},
    {"$schema": strs},
)
resource = obj({"resource_id": strs, "actions": st.lists(strs, max_size=2)}, {"description": strs})
scope = obj({"scope": strs, "permissions": st.lists(permission, max_size=2)}, {"description": strs})
project_file = obj(
    {
        "policy": obj(
            {"roles": st.lists(role, max_size=2), "resources": st.lists(resource, max_size=2)},
            {"scopes": st.lists(scope, max_size=2)},
        )
    },
    {"$schema": strs},
)


def pydantic_accepts(model: type[BaseModel], doc: Any) -> bool:
    try:
        model.model_validate(doc)
    except ValidationError:
        return False
    return True


@settings(max_examples=400, deadline=None)
@given(org_file)
def test_org_schema_and_model_agree(doc: Any) -> None:
    schema_ok = jsonschema.Draft202012Validator(committed("org-policy")).is_valid(doc)
    assert schema_ok == pydantic_accepts(OrgPolicyFile, doc)


@settings(max_examples=300, deadline=None)
@given(project_file)
def test_project_schema_and_model_agree(doc: Any) -> None:
    schema_ok = jsonschema.Draft202012Validator(committed("project-policy")).is_valid(doc)
    assert schema_ok == pydantic_accepts(ProjectPolicyFile, doc)


# --- `policysync schema` --------------------------------------------------------------


def test_schema_without_a_name_lists_the_names(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["schema"], capsys) == (0, "\n".join(schemas.SCHEMA_MODELS) + "\n", "")


@pytest.mark.parametrize("name", sorted(schemas.SCHEMA_MODELS))
def test_schema_name_prints_the_published_file(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["schema", name], capsys)
    assert (code, err) == (0, "")
    assert out == (SCHEMA_DIR / schemas.filename(name)).read_text(encoding="utf-8")


def test_schema_out_writes_every_schema_into_a_new_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "a" / "schemas"
    code, out, err = run(["schema", "--out", str(out_dir)], capsys)
    assert (code, err) == (0, "")
    written = [out_dir / schemas.filename(name) for name in schemas.SCHEMA_MODELS]
    assert out.splitlines() == [str(path) for path in written]
    assert sorted(out_dir.iterdir()) == sorted(written)
    assert schemas.stale(out_dir) == []


def test_schema_name_out_writes_only_that_one_and_replaces_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "drift.schema.json").write_text("{}")
    code, out, _ = run(["schema", "drift", "--out", str(tmp_path)], capsys)
    assert (code, out) == (0, f"{tmp_path / 'drift.schema.json'}\n")
    assert [p.name for p in tmp_path.iterdir()] == ["drift.schema.json"]
    assert (tmp_path / "drift.schema.json").read_text() == schemas.render("drift")


def test_an_unknown_schema_name_is_a_usage_error_naming_the_schemas(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["schema", "org-polcy", "--out", str(tmp_path)], capsys)
    assert (code, out) == (1, "")
    assert err == (
        "error: no schema is named 'org-polcy': the schemas are "
        + ", ".join(schemas.SCHEMA_MODELS)
        + "\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_schema_out_where_nothing_can_be_written_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, out, err = run(["schema", "--out", str(blocker / "schemas")], capsys)
    assert (code, out) == (1, "")
    assert err.startswith(f"error: {blocker / 'schemas'}: cannot write the schemas there (")
    assert err.endswith("): choose another --out folder\n")

"""The sample trees of `examples/`: the ZenML Pro sample validates, points editors at the
published schemas, and its emulator seed loads and differs from the files as the sample
means it to (one role to create, one to update, one to delete while a user holds it,
one organization already matching)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from support.clirun import run
from test_schemas import SCHEMA_DIR, committed

from policysync.emulator.server import read_model
from policysync.emulator.zenml_store import ZenmlSeed, ZenmlStore, seed_problem
from policysync.zenml_models import ZenmlOrgFile

ZENML = Path(__file__).parent.parent / "examples" / "zenml"
ORGS = sorted((ZENML / "policies" / "orgs").glob("*.json"))


def test_zenml_sample_validates_through_the_cli(capsys: pytest.CaptureFixture[str]) -> None:
    config = ZENML / "policysync.toml"
    code, out, err = run(["validate", "--config", str(config)], capsys)
    assert (code, err) == (0, "")
    assert out == f"{1 + len(ORGS)} files valid ({len(ORGS)} organizations).\n"
    assert len(ORGS) == 3


def test_zenml_sample_points_editors_at_the_zenml_schemas() -> None:
    for path, name in [
        (ZENML / "policies" / "permissions.json", "zenml-permissions"),
        *((p, "zenml-org-roles") for p in ORGS),
    ]:
        document = json.loads(path.read_text())
        target = (path.parent / document["$schema"]).resolve()
        assert target == SCHEMA_DIR.resolve() / f"{name}.schema.json", path
        jsonschema.validate(document, committed(name))


def seeded() -> ZenmlStore:
    seed = read_model(ZENML / "emulator-seed.json", ZenmlSeed)
    assert seed_problem(seed) is None
    store = ZenmlStore()
    store.load(seed)
    return store


def test_zenml_seed_loads_with_the_predefined_roles() -> None:
    store = seeded()
    assert [o["name"] for o in store.organizations()] == ["acme", "globex", "initech"]
    for org in store.organizations():
        assert sum(r.system_managed for r in store.roles(org["id"])) == 14


def test_zenml_seed_differs_from_the_sample_as_its_plan_should_show() -> None:
    """What a plan of the sample against the seeded emulator finds, worked out here
    from the files and the store alone: roles keyed by (level, name), compared by
    description and the set of permissions."""
    store = seeded()
    found: dict[str, tuple[str, ...]] = {}
    by_name = []
    for path in ORGS:
        doc = ZenmlOrgFile.model_validate_json(path.read_text())
        org = store.organization(doc.organization_id)
        assert org is not None, f"{path.name}: {doc.organization_id} is not in the seed"
        if doc.organization_id == org["name"]:
            by_name.append(path.name)
        desired = {
            (r.level, r.name): (r.description, {(p.resource, p.action) for p in r.permissions})
            for r in doc.roles
        }
        live = {
            (r.level, r.name): r
            for r in store.roles(org["id"])
            if not r.system_managed  # never planned
        }
        changes = []
        for key, (description, permissions) in sorted(desired.items()):
            role = live.get(key)
            if role is None:
                changes.append(f"create {key[1]}")
            elif (role.description, {(p["resource"], p["action"]) for p in role.permissions}) != (
                description,
                permissions,
            ):
                changes.append(f"update {key[1]}")
        for key in sorted(live.keys() - desired.keys()):
            held = len(store.assignments(live[key].id))
            changes.append(f"delete {key[1]}, assigned {held}")
        found[path.stem] = tuple(changes)
    assert found == {
        "acme": ("update Model Promoters", "delete Pipeline Reviewers, assigned 1"),
        "globex": ("create Stack Operators",),
        "initech": (),
    }
    assert by_name == ["globex.json"]  # resolved through GET /organizations

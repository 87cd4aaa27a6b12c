"""`policysync fmt [--check]` end to end through the CLI, on copies of the sample trees
(Stytch's `policies/`, ZenML Pro's `examples/zenml/`): files rewritten in the canonical
form export writes, `--check` writing nothing, an invalid tree refused."""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
from pathlib import Path
from typing import Any

import pytest
from support.clirun import run

from policysync.canonical import normalize
from policysync.export import Target, org_file
from policysync.models import OrgPolicyFile
from policysync.zenml_models import ZenmlOrgFile, core_file

ROOT = Path(__file__).parent.parent.parent
ZENML_SAMPLE = ROOT / "examples" / "zenml"
ORGS = Path("policies/orgs")
PROJECT = Path("policies/project.json")
FINANCE = Path("policies/templates/finance.json")


def snapshot(root: Path = Path("policies")) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(root.rglob("*.json"))}


def reversed_json(value: Any) -> Any:
    """`value` with every list and every object's keys in reverse order."""
    if isinstance(value, list):
        return [reversed_json(v) for v in reversed(value)]
    if isinstance(value, dict):
        return {k: reversed_json(value[k]) for k in reversed(list(value))}
    return value


def scramble(path: Path, indent: int | None = None) -> bytes:
    """Write `path` again in another form (every order reversed, other spacing): the
    same content; its new bytes."""
    data = json.dumps(reversed_json(json.loads(path.read_bytes())), indent=indent).encode()
    path.write_bytes(data)
    return data


def stytch_policy(path: Path) -> OrgPolicyFile:
    return OrgPolicyFile.model_validate_json(path.read_bytes().removeprefix(b"\xef\xbb\xbf"))


# Stytch ------------------------------------------------------------------------------


def test_the_samples_are_canonical(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["fmt", "--check", str(ROOT / "policies")], capsys)
    assert (code, out) == (0, ""), err
    assert err == "9 files already in the canonical form.\n"
    config = ZENML_SAMPLE / "policysync.toml"
    code, out, err = run(["fmt", "--check", "--config", str(config)], capsys)
    assert (code, out) == (0, ""), err
    assert err == "3 files already in the canonical form.\n"  # not permissions.json


def test_check_lists_the_files_and_writes_nothing_then_fmt_rewrites_them(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    canonical = snapshot()
    scramble(ORGS / "acme.json")
    scramble(ORGS / "umbrella.json", indent=4)
    scramble(PROJECT, indent=1)
    scramble(FINANCE, indent=3)
    scrambled = snapshot()
    assert scrambled != canonical
    listed = [str(PROJECT), str(ORGS / "acme.json"), str(ORGS / "umbrella.json"), str(FINANCE)]

    code, out, err = run(["fmt", "--check"], capsys)
    assert code == 1
    assert out.splitlines() == listed
    assert err == "4 of 9 files not in the canonical form: `policysync fmt` rewrites them.\n"
    assert snapshot() == scrambled  # --check writes nothing

    inodes = {p: p.stat().st_ino for p in ORGS.iterdir()}
    code, out, err = run(["fmt"], capsys)
    assert code == 0, err
    assert out.splitlines() == listed
    assert err == "Formatted 4 of 9 files.\n"
    assert snapshot() == canonical  # the sample's bytes again: the form export writes
    for path, inode in inodes.items():  # only the files that changed were replaced
        assert (path.stat().st_ino == inode) == (path.name not in ("acme.json", "umbrella.json"))

    code, out, err = run(["fmt"], capsys)  # idempotent
    assert (code, out, err) == (0, "", "9 files already in the canonical form.\n")
    assert run(["fmt", "--check"], capsys)[0] == 0


def test_what_fmt_writes_is_what_export_writes_for_the_same_policy(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    acme = ORGS / "acme.json"
    data = json.loads(acme.read_bytes())
    data["$schema"] = "https://example.com/org-policy.schema.json"
    data["organization_id"] = "acme"  # a slug, as written
    for role in data["org_policy"]["roles"]:
        del role["description"]  # omitted: ""
    acme.write_text(json.dumps(data))
    written = stytch_policy(acme)
    assert run(["fmt", str(acme)], capsys)[0] == 0
    target = Target("acme", "acme.json", "https://example.com/org-policy.schema.json", ("finance",))
    assert acme.read_bytes() == org_file(target, written.org_policy)
    document = json.loads(acme.read_bytes())
    assert list(document) == ["$schema", "organization_id", "templates", "org_policy"]
    assert [r["description"] for r in document["org_policy"]["roles"]] == [""]


def test_a_file_without_schema_gets_none_and_a_bom_and_crlf_go(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    globex = ORGS / "globex.json"
    data = json.loads(globex.read_bytes())
    del data["$schema"]
    text = json.dumps(data, indent=2).replace("\n", "\r\n")
    globex.write_bytes(b"\xef\xbb\xbf" + text.encode())
    before = stytch_policy(globex)
    code, out, err = run(["fmt"], capsys)
    assert code == 0
    assert "warning[file-bom]" in err  # validate's warnings are shown, and do not stop it
    assert out == f"{globex}\n"
    after = globex.read_bytes()
    assert not after.startswith(b"\xef\xbb\xbf")
    assert b"\r" not in after
    assert "$schema" not in json.loads(after)
    assert stytch_policy(globex) == before


def test_two_permissions_on_one_resource_stay_two(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """validate warns (resource-repeated) but allows it: fmt neither merges nor drops."""
    acme = ORGS / "acme.json"
    data = json.loads(acme.read_bytes())
    auditor = data["org_policy"]["roles"][0]
    assert auditor["role_id"] == "auditor"
    auditor["permissions"] = [
        {"resource_id": "invoices", "actions": ["read"]},
        {"resource_id": "audit-log", "actions": ["read"]},
        {"resource_id": "audit-log", "actions": ["export", "read"]},
    ]
    acme.write_text(json.dumps(data))
    before = stytch_policy(acme)
    code, _, err = run(["fmt"], capsys)
    assert code == 0
    assert "warning[resource-repeated]" in err
    after = json.loads(acme.read_bytes())["org_policy"]["roles"][0]["permissions"]
    assert after == [
        {"resource_id": "audit-log", "actions": ["export", "read"]},
        {"resource_id": "audit-log", "actions": ["read"]},
        {"resource_id": "invoices", "actions": ["read"]},
    ]
    assert normalize(stytch_policy(acme).org_policy) == normalize(before.org_policy)


def test_an_invalid_tree_is_refused_and_nothing_is_written(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scramble(ORGS / "umbrella.json")  # would be formatted, but for the errors
    stark = ORGS / "stark-industries.json"
    stark.write_text(stark.read_text().replace('"approve"', '"aprove"'))
    hooli = ORGS / "hooli.json"
    hooli.write_text(hooli.read_text()[:-10])  # JSON cut short
    before = snapshot()
    for argv in (["fmt"], ["fmt", "--check"]):
        code, out, err = run(argv, capsys)
        assert (code, out) == (1, "")
        lines = err.splitlines()
        assert lines[0].startswith(f"{hooli}:")
        assert "error[json-syntax]" in lines[0]
        assert lines[1].startswith(f"{stark}:29:15: error[action-unknown] ")
        assert lines[-2] == "2 errors, 0 warnings in 10 files: invalid."
        assert lines[-1] == "error: the files were not formatted: fix the errors first"
        assert snapshot() == before


def test_paths_select_files_and_folders_as_validate_does(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scramble(ORGS / "acme.json")
    globex = scramble(ORGS / "globex.json")
    code, out, err = run(["fmt", str(ORGS / "acme.json")], capsys)
    assert (code, out, err) == (0, f"{ORGS / 'acme.json'}\n", "Formatted 1 of 1 file.\n")
    assert (ORGS / "globex.json").read_bytes() == globex  # not named: left as it is
    # a named file is checked in its tree, and only its errors stop it
    (ORGS / "hooli.json").write_text("{")
    code, out, _ = run(["fmt", str(ORGS / "globex.json")], capsys)
    assert (code, out) == (0, f"{ORGS / 'globex.json'}\n")
    assert run(["fmt", str(ORGS)], capsys)[0] == 1  # the folder: every file
    (ORGS / "hooli.json").unlink()

    shutil.move("policies", "elsewhere")
    scramble(Path("elsewhere/orgs/globex.json"))
    scramble(Path("elsewhere/orgs/initech.json"))
    code, out, err = run(["fmt", "--check", "--policies", "elsewhere"], capsys)
    assert (code, out) == (1, "elsewhere/orgs/globex.json\nelsewhere/orgs/initech.json\n")
    code, out, err = run(["fmt", "elsewhere/orgs"], capsys)  # orgs/ names its root
    assert (code, err) == (0, "Formatted 2 of 8 files.\n")
    assert run(["fmt", "--check", "elsewhere"], capsys)[0] == 0


def test_a_file_keeps_its_permissions(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    acme = ORGS / "acme.json"
    scramble(acme)
    acme.chmod(0o640)
    assert run(["fmt"], capsys)[0] == 0
    assert stat.S_IMODE(acme.stat().st_mode) == 0o640 & ~current_umask()


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.skipif(sys.platform == "win32", reason="symbolic links need privileges there")
def test_a_symbolic_link_stays_one(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shared = Path("policies/shared")
    shared.mkdir()
    (ORGS / "acme.json").rename(shared / "acme.json")
    (ORGS / "acme.json").symlink_to(Path("../shared/acme.json"))
    scramble(shared / "acme.json")
    code, out, err = run(["fmt"], capsys)
    assert (code, out) == (0, f"{ORGS / 'acme.json'}\n"), err
    assert (ORGS / "acme.json").is_symlink()
    assert run(["fmt", "--check"], capsys)[0] == 0


# ZenML Pro ---------------------------------------------------------------------------


@pytest.fixture
def zenml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of examples/zenml/ (provider = "zenml"), as the current folder."""
    shutil.copytree(ZENML_SAMPLE, tmp_path / "zenml")
    monkeypatch.chdir(tmp_path / "zenml")
    return tmp_path / "zenml"


def zenml_roles(path: Path) -> frozenset[tuple[str, str, str, str, str]]:
    document = ZenmlOrgFile.model_validate_json(path.read_bytes())
    return frozenset(
        (r.level, r.name, r.description, p.resource, p.action)
        for r in document.roles
        for p in r.permissions
    )


def test_zenml_files_are_formatted_in_zenml_shape(
    zenml: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    canonical = snapshot()
    permissions = Path("policies/permissions.json")
    permissions.write_text(json.dumps(json.loads(permissions.read_text())))  # one line
    for name in ("acme.json", "globex.json", "initech.json"):
        scramble(ORGS / name)
    roles = {p: zenml_roles(p) for p in ORGS.iterdir()}
    code, out, err = run(["fmt", "--check"], capsys)
    assert (code, out.splitlines()) == (
        1,
        [str(ORGS / n) for n in ("acme.json", "globex.json", "initech.json")],
    )
    assert err == "3 of 3 files not in the canonical form: `policysync fmt` rewrites them.\n"
    assert run(["fmt"], capsys)[0] == 0
    after = snapshot()
    assert {k: v for k, v in after.items() if "orgs" in k} == {
        k: v for k, v in canonical.items() if "orgs" in k
    }
    assert after[str(permissions)] == permissions.read_bytes()  # export never writes it
    assert {p: zenml_roles(p) for p in ORGS.iterdir()} == roles
    globex = json.loads((ORGS / "globex.json").read_text())
    assert globex["organization_id"] == "globex"  # named by name, as written
    assert globex["$schema"] == "../../../../schemas/zenml-org-roles.schema.json"
    assert run(["fmt", "--check"], capsys)[0] == 0


def test_a_zenml_permission_listed_twice_is_listed_once(
    zenml: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    acme = ORGS / "acme.json"
    document = json.loads(acme.read_text())
    permissions = document["roles"][0]["permissions"]
    permissions.append(dict(permissions[0]))
    acme.write_text(json.dumps(document, indent=2))
    before = core_file(ZenmlOrgFile.model_validate_json(acme.read_bytes()))
    assert run(["fmt"], capsys)[0] == 0
    after = json.loads(acme.read_text())["roles"][0]["permissions"]
    assert len(after) == len(permissions) - 1
    assert normalize(core_file(ZenmlOrgFile.model_validate_json(acme.read_bytes())).org_policy) == (
        normalize(before.org_policy)
    )


def test_an_invalid_zenml_tree_is_refused(zenml: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scramble(ORGS / "globex.json")
    acme = ORGS / "acme.json"
    acme.write_text(acme.read_text().replace('"promote"', '"promotee"'))
    before = snapshot()
    code, out, err = run(["fmt"], capsys)
    assert (code, out) == (1, "")
    assert f"{acme}:" in err
    assert "error[zenml-action-unknown]" in err
    assert snapshot() == before

"""`policysync emulator --provider zenml` as a user runs it: a real process on 127.0.0.1."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from support.clirun import run as cli
from support.processes import clean_env, emulator_process, run

from policysync.emulator.zenml_app import DEFAULT_API_KEY

from .test_zenml import ACME, SEED_FILE

GIVEN_KEY = "ZENPROKEY_given-by-the-user-2718281828459045"


def token(url: str, key: str = DEFAULT_API_KEY) -> str:
    answer = httpx.post(url + "auth/login", data={"password": key}, timeout=10)
    assert answer.status_code == 200, answer.text
    value: str = answer.json()["access_token"]
    return value


def organizations(url: str, bearer: str) -> int:
    headers = {"Authorization": f"Bearer {bearer}"}
    return httpx.get(url + "organizations", headers=headers, timeout=10).status_code


def test_prints_the_url_and_a_working_default_key(tmp_path: Path) -> None:
    args = ("--provider", "zenml", "--seed", str(SEED_FILE))
    with emulator_process(*args, cwd=tmp_path) as running:
        assert running.first_line.startswith(
            "policysync emulator serving ZenML Pro's organization roles API at"
        )
        assert organizations(running.url, token(running.url)) == 200
        running.stop()
    lines = running.stdout.splitlines()
    assert f"  ZENML_PRO_API_URL={running.url}" in lines
    assert f"  ZENML_PRO_API_KEY={DEFAULT_API_KEY}" in lines
    assert "STYTCH" not in running.stdout
    assert "Traceback" not in running.stderr


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_a_given_key_is_the_only_one_accepted_and_never_printed(tmp_path: Path, how: str) -> None:
    args = ["--provider", "zenml", "--seed", str(SEED_FILE)]
    env = clean_env()
    if how == "flag":
        args += ["--api-key", GIVEN_KEY]
    else:
        env["ZENML_PRO_API_KEY"] = GIVEN_KEY
    with emulator_process(*args, cwd=tmp_path, env=env) as running:
        assert organizations(running.url, token(running.url, GIVEN_KEY)) == 200
        refused = httpx.post(running.url + "auth/login", data={"password": DEFAULT_API_KEY})
        assert refused.status_code == 401
        running.stop()
    assert GIVEN_KEY not in running.stdout + running.stderr
    assert "ZENML_PRO_API_KEY=(from --api-key or $ZENML_PRO_API_KEY)" in running.stdout


def test_a_token_expires_after_token_ttl_and_logging_in_again_works(tmp_path: Path) -> None:
    args = ("--provider", "zenml", "--seed", str(SEED_FILE), "--token-ttl", "1")
    with emulator_process(*args, cwd=tmp_path) as running:
        first = token(running.url)
        assert organizations(running.url, first) == 200
        time.sleep(1.2)
        expired = httpx.get(
            running.url + "organizations", headers={"Authorization": f"Bearer {first}"}
        )
        assert expired.status_code == 401
        assert expired.json()["detail"][1] == "The token has expired."
        assert organizations(running.url, token(running.url)) == 200


def test_the_state_persists_across_a_kill_and_restart_with_db(tmp_path: Path) -> None:
    db = tmp_path / "zenml.db"
    args = ("--provider", "zenml", "--db", str(db))
    with emulator_process(*args, "--seed", str(SEED_FILE), cwd=tmp_path) as running:
        headers = {"Authorization": f"Bearer {token(running.url)}"}
        body = {"name": "Kept", "level": "project", "organization_id": ACME, "permissions": []}
        created = httpx.post(running.url + "roles", json=body, headers=headers).json()
        running.kill()
    with emulator_process(*args, "--seed", str(SEED_FILE), cwd=tmp_path) as running:
        headers = {"Authorization": f"Bearer {token(running.url)}"}
        again = httpx.get(running.url + f"roles/{created['id']}", headers=headers)
        assert again.json() == created
        running.stop()
    assert "already holds a state" in running.stderr
    dumped = run(*args, "--dump", cwd=tmp_path)
    assert dumped.returncode == 0, dumped.stderr
    (acme,) = [o for o in json.loads(dumped.stdout)["organizations"] if o["id"] == ACME]
    assert "Kept" in [r["name"] for r in acme["roles"]]
    assert "Workspace Admin" not in [r["name"] for r in acme["roles"]]  # predefined: implied


@pytest.mark.parametrize(
    ("seed", "fragment"),
    [
        ("{", "not a valid seed file"),
        ('{"organizations": [{"id": "acme", "name": "acme"}]}', "valid UUID"),
        (
            json.dumps(
                {
                    "organizations": [
                        {
                            "id": ACME,
                            "name": "a",
                            "roles": [{"name": "Project Admin", "level": "project"}],
                        }
                    ]
                }
            ),
            "predefined role",
        ),
    ],
)
def test_a_bad_seed_is_a_clean_failure(tmp_path: Path, seed: str, fragment: str) -> None:
    path = tmp_path / "seed.json"
    path.write_text(seed)
    result = run("--provider", "zenml", "--port", "0", "--seed", str(path), cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert str(path) in result.stderr
    assert fragment in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_empty_and_on_every_interface_it_serves_no_organization_at_a_loopback_url(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No --seed, `--host 0.0.0.0`: it starts with no organization and prints
    127.0.0.1's URL, which `policysync export --all-orgs` (provider = "zenml") logs in
    at, finding nothing to export."""
    with emulator_process("--provider", "zenml", "--host", "0.0.0.0", cwd=tmp_path) as running:
        assert running.url.startswith("http://127.0.0.1:")
        assert f"  ZENML_PRO_API_URL={running.url}" in running.stdout.splitlines()
        listed = httpx.get(
            running.url + "organizations",
            headers={"Authorization": f"Bearer {token(running.url)}"},
            timeout=10,
        )
        assert listed.json() == []
        (tmp_path / "policysync.toml").write_text('provider = "zenml"\n')
        (tmp_path / "policies" / "orgs").mkdir(parents=True)
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("ZENML_PRO_API_URL", running.url)
        monkeypatch.setenv("ZENML_PRO_API_KEY", DEFAULT_API_KEY)
        code, out, err = cli(["export", "--all-orgs", "--format", "json"], capsys)
        assert code == 0, out + err
        running.stop()
    assert json.loads(out)["files"] == []
    assert "  started empty: no organizations; --seed FILE loads a state" in running.stdout
    assert "warning: listening on all interfaces (0.0.0.0)" in running.stderr

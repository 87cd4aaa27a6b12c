"""A fake `gh` (GitHub's CLI) for the workflow tests: `python fake_gh.py ARGS...`.

It keeps comments, issues, labels and releases in the JSON file named by FAKE_GH_STATE,
answers with GitHub's JSON shapes, applies `--jq` filters with jq itself, and records
every call (no network). It runs as a script, without pytest or policysync.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

FAKE_GH_STATE = "FAKE_GH_STATE"
BOT = {"login": "github-actions[bot]", "type": "Bot"}  # who comments with GITHUB_TOKEN
FLAGS = ("--paginate", "--force", "--clobber", "--verify-tag", "--generate-notes", "--prerelease")


def initial_state() -> dict[str, Any]:
    return {
        "calls": [],
        "comments": [],
        "next_id": 0,
        "issues": [],
        "labels": [],
        "issue_labels": {},  # issue or pull request number (as a string) -> label names
        "releases": {},
        "read_only": False,
    }


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
        if arg in FLAGS:
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

    def assets(paths: list[str]) -> dict[str, str]:
        """The files attached, by name: the sha256 of their bytes."""
        return {Path(p).name: hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths}

    issues = state["issues"]
    releases = state["releases"]
    match words:
        case ["api", endpoint]:
            method = opts.get("--method", "GET")
            thread = re.fullmatch(rf"repos/{re.escape(repo)}/issues/(\d+)/comments", endpoint)
            comment = re.fullmatch(rf"repos/{re.escape(repo)}/issues/comments/(\d+)", endpoint)
            labelled = re.fullmatch(
                rf"repos/{re.escape(repo)}/issues/(\d+)/labels(?:/(.+))?", endpoint
            )
            if labelled:
                return _issue_labels(state, method, opts, labelled[1], labelled[2], refused)
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
            if state["read_only"]:
                return refused()
            if name not in state["labels"]:
                state["labels"].append(name)
            return 0
        case ["release", "view", tag]:
            if tag not in releases:
                print("release not found", file=sys.stderr)
                return 1
            print(json.dumps(releases[tag]))
            return 0
        case ["release", "create", tag, *files]:
            if state["read_only"]:
                return refused()
            assert tag not in releases, "a release of that tag exists already"
            releases[tag] = {
                "title": opts.get("--title", tag),
                "prerelease": "--prerelease" in opts,
                "verify_tag": "--verify-tag" in opts,
                "generate_notes": "--generate-notes" in opts,
                "assets": assets(files),
            }
            print(f"https://github.com/{repo}/releases/tag/{tag}")
            return 0
        case ["release", "upload", tag, *files]:
            if tag not in releases:
                print("release not found", file=sys.stderr)
                return 1
            names = set(assets(files))
            if "--clobber" not in opts and names & set(releases[tag]["assets"]):
                print("asset under the same name already exists", file=sys.stderr)
                return 1
            releases[tag]["assets"].update(assets(files))
            return 0
    print(f"fake gh: unsupported call {argv}", file=sys.stderr)
    return 2


def _issue_labels(
    state: dict[str, Any],
    method: str,
    opts: dict[str, str],
    number: str,
    name: str | None,
    refused: Any,
) -> int:
    """GET, POST (`-f labels[]=NAME`) and DELETE (`.../labels/NAME`) of an issue's or a
    pull request's labels, as GitHub's REST API answers them."""
    labels: list[str] = state["issue_labels"].setdefault(number, [])
    if method == "GET" and name is None:
        assert "--paginate" in opts, opts
        print_jq(opts["--jq"], [{"name": label} for label in labels])
        return 0
    if state["read_only"]:
        return refused()
    if method == "POST" and name is None:
        field, _, added = opts["-f"].partition("=")
        assert field == "labels[]", opts
        assert added in state["labels"], "the label must exist first (its colour)"
        if added not in labels:
            labels.append(added)
        print(json.dumps([{"name": label} for label in labels]))
        return 0
    if method == "DELETE" and name is not None:
        if name not in labels:
            print("gh: Label does not exist (HTTP 404)", file=sys.stderr)
            return 1
        labels.remove(name)
        print(json.dumps([{"name": label} for label in labels]))
        return 0
    print(f"fake gh: unsupported call of {method} on labels", file=sys.stderr)
    return 2


def print_jq(program: str, value: Any) -> None:
    """`gh --jq`: each result on a line, a string as it is, anything else as JSON."""
    import jq  # a dev dependency of the test suite

    for result in jq.compile(program).input_value(value).all():
        print(result if isinstance(result, str) else json.dumps(result))


if __name__ == "__main__":
    sys.exit(fake_gh(sys.argv[1:]))

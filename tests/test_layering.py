"""The layers, as the README's "How it is built" draws them: a flat core in the middle,
commands, views and providers around it, the emulator apart.

    cli        cli.py, options.py: parses options, builds the provider, calls a command
    core       the other policysync/*.py: imports no command, view, provider or emulator
    providers  import no command, view, the CLI, nor the emulator
    views      import no command, provider, the CLI, nor the emulator
    commands   import no view, the CLI, nor the emulator
    emulator   imports no command, view or provider
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "policysync"
FORBIDDEN = {
    "core": ("commands", "views", "providers", "emulator", "cli"),
    "providers": ("commands", "views", "emulator", "cli"),
    "views": ("commands", "providers", "emulator", "cli"),
    "commands": ("views", "emulator", "cli"),
    "emulator": ("commands", "views", "providers", "cli"),
}


def layer(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    if len(relative.parts) == 1:
        return "cli" if relative.name in ("cli.py", "options.py", "__main__.py") else "core"
    return relative.parts[0]


def imported(path: Path) -> set[str]:
    """Every policysync module `path` imports, at any depth of the code."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in names if name.startswith("policysync.")}


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_each_layer_imports_only_what_it_may(path: Path) -> None:
    own = layer(path)
    if own == "cli":
        return
    offenders = [
        name
        for name in imported(path)
        for other in FORBIDDEN[own]
        if name == f"policysync.{other}" or name.startswith(f"policysync.{other}.")
    ]
    assert offenders == [], f"{own} module {path.name} imports {offenders}"


def test_the_layer_rule_catches_a_core_module_importing_a_provider(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from policysync.providers.stytch import from_env\n")
    assert "policysync.providers.stytch" in imported(bad)


# Where Stytch may be named as more than prose: its provider, its emulator, its rules
# (validation of org policies) and the models whose shapes are Stytch's.
STYTCH_MAY_LIVE = {"providers/stytch.py", "rules.py", "models.py", "diagnostics.py"}


def stytch_specific(path: Path) -> list[str]:
    """What in `path` is Stytch's: a name of code (a module, class, function, variable)
    that says so, or a string (not a docstring) naming Stytch's hosts or credentials."""
    return specific(path, "stytch", r"stytch\.com|STYTCH_")


def specific(path: Path, word: str, strings: str) -> list[str]:
    """What in `path` is one provider's: a name of code containing `word`, or a string
    (not a docstring) matching `strings`."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name | ast.Attribute | ast.alias):
            text = node.name if isinstance(node, ast.alias) else ast.unparse(node)
            if re.search(word, text, re.IGNORECASE):
                found.append(text)
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and re.search(strings, node.value)
        ):
            found.append(node.value)
    return found


def test_no_stytch_specific_logic_outside_its_provider() -> None:
    offenders = [
        f"{relative}: {text}"
        for path in MODULES
        if not (relative := path.relative_to(PACKAGE).as_posix()).startswith("emulator/")
        and relative not in STYTCH_MAY_LIVE
        and layer(path) != "cli"  # its help names the variables users set
        for text in stytch_specific(path)
    ]
    assert offenders == []


def test_the_stytch_rule_catches_a_client_and_a_credential(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text('from x import StytchClient\nKEY = "STYTCH_SECRET"\nDOC = 1\n')
    assert stytch_specific(bad) == ["StytchClient", "STYTCH_SECRET"]


# Where ZenML may be named as more than prose: its own modules (zenml_*.py: models,
# vocabulary, rules, validation), its provider and emulator, the diagnostic codes, the
# registry of published schemas, and the one line of validate.py that hands a ZenML
# tree to its validation.
def zenml_may_live(relative: str) -> bool:
    name = relative.rpartition("/")[2]
    return (
        name.startswith("zenml")
        or relative.startswith("emulator/")
        or relative in {"diagnostics.py", "schemas.py", "validate.py"}
    )


def test_no_zenml_specific_logic_outside_its_modules() -> None:
    offenders = [
        f"{relative}: {text}"
        for path in MODULES
        if not zenml_may_live(relative := path.relative_to(PACKAGE).as_posix())
        and layer(path) != "cli"
        for text in specific(path, "zenml", r"zenml\.io|ZENML_")
    ]
    assert offenders == []


def test_the_zenml_rule_catches_a_name_and_a_credential(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text('from x import check_zenml_org\nKEY = "ZENML_PRO_API_KEY"\n')
    assert specific(bad, "zenml", r"zenml\.io|ZENML_") == ["check_zenml_org", "ZENML_PRO_API_KEY"]
    assert not zenml_may_live("rules.py")
    assert zenml_may_live("providers/zenml.py")


def test_running_validate_or_fmt_loads_no_server_or_http_code() -> None:
    """They run in pre-commit hooks."""
    code = (
        "import sys, policysync.cli, policysync.commands.validate, policysync.commands.fmt, "
        "policysync.views.fmt, policysync.zenml_format; "
        "print(sorted(m for m in sys.modules "
        "if m.startswith(('policysync.emulator.', 'starlette', 'uvicorn', 'httpx'))"
        " and m != 'policysync.emulator.command'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

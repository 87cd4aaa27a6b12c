"""The core never imports the emulator (nor its server stack)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).parent.parent / "policysync"


def test_no_core_module_imports_the_emulator_at_module_level() -> None:
    offenders = []
    for path in PACKAGE.glob("*.py"):
        for node in ast.parse(path.read_text()).body:  # module level only
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [
                f"{path.name}: {n}"
                for n in names
                if n.startswith(("policysync.emulator", "starlette", "uvicorn"))
                and n != "policysync.emulator.command"  # the command; the server is imported late
            ]
    assert offenders == []


def test_running_validate_loads_no_server_code() -> None:
    code = (
        "import sys, policysync.cli, policysync.validate; "
        "print(sorted(m for m in sys.modules "
        "if m.startswith(('policysync.emulator.', 'starlette', 'uvicorn'))"
        " and m != 'policysync.emulator.command'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

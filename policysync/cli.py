"""The command line: parses options, calls one command function, prints, exits.

Exit codes follow Terraform: 0 success, 1 error (usage errors included: 2 is kept for
"changes present" / "drift found"), so a CI job can never mistake one for the other.
"""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path

import click

from policysync import __version__
from policysync.config import find_config, load_settings
from policysync.errors import PolicysyncError
from policysync.render import VALIDATE_RENDERERS
from policysync.validate import validate as run_validate

EXIT_OK, EXIT_ERROR = 0, 1


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="policysync")
def cli() -> None:
    """Organization-scoped Stytch RBAC policies kept in git.

    `policysync validate` checks the policy files offline. Exit codes: 0 success,
    1 invalid files or any error.
    """


@cli.command(short_help="Check policy files offline: schemas, Stytch's rules, limits.")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path, exists=True))
@click.option(
    "--config",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Settings file [default: ./policysync.toml, or [tool.policysync] in ./pyproject.toml].",
)
@click.option(
    "--policies",
    type=click.Path(path_type=Path, file_okay=False),
    help="The policies folder [default: policies].",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(sorted(VALIDATE_RENDERERS)),
    default="text",
    show_default=True,
    help="text for people, json for programs, github for workflow annotations.",
)
@click.option("--strict", is_flag=True, help="Warnings fail the run too.")
def validate(
    paths: tuple[Path, ...], config: Path | None, policies: Path | None, fmt: str, strict: bool
) -> int:
    """Check policy files against the schemas and Stytch's rules, offline.

    PATHS are policies folders (holding project.json and orgs/) or single files; without
    PATHS the policies folder is checked. Exit 0 when valid, 1 otherwise.
    """
    settings = load_settings(config or find_config(Path()))
    if policies is not None:
        settings = settings.model_copy(update={"policies": str(policies)})
    # A short-lived batch run builds many long-lived objects and no reference cycles:
    # the cyclic garbage collector would only re-scan them, doubling the run time.
    gc.disable()
    try:
        report = run_validate(list(paths), settings, strict)
    finally:
        gc.enable()
    click.echo(VALIDATE_RENDERERS[fmt](report))
    return EXIT_OK if report.valid else EXIT_ERROR


def main(argv: list[str] | None = None) -> None:
    """Entry point: the one place that turns errors into messages and exit codes."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        code = cli.main(args=argv, prog_name="policysync", standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        code = EXIT_ERROR
    except click.Abort:
        click.echo("Aborted.", err=True)
        code = EXIT_ERROR
    except PolicysyncError as exc:
        click.echo(f"error: {exc}", err=True)
        code = EXIT_ERROR
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        code = 130
    except Exception as exc:
        if os.environ.get("POLICYSYNC_DEBUG"):
            raise
        click.echo(
            f"internal error: {type(exc).__name__}: {exc}\n"
            "This is a bug in policysync; set POLICYSYNC_DEBUG=1 to see where, and report it.",
            err=True,
        )
        code = EXIT_ERROR
    sys.exit(code if isinstance(code, int) else EXIT_OK)

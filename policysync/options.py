"""The command line's options, shared by its commands: defined once, and the groups of
them that several commands take, handed over as one value each (`settings`, `live`)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar, cast

import click

from policysync.config import Settings, find_config, load_settings
from policysync.selection import Shard

if TYPE_CHECKING:
    from policysync.commands.plan import Options

F = TypeVar("F", bound=Callable[..., Any])
RUN_FORMATS = ("json", "markdown", "text")  # views.run.RUN_RENDERERS (imported lazily)
DRIFT_FORMATS = ("json", "markdown", "text")  # views.drift.DRIFT_RENDERERS (lazily)
EXPORT_FORMATS = ("json", "text")  # views.export.EXPORT_RENDERERS (lazily)


class Live(NamedTuple):
    """The options of a command that talks to the provider."""

    orgs: tuple[str, ...]
    shard: str | None
    parallelism: int
    rate_limit: float | None
    environment: str | None = None  # --env NAME

    def options(self) -> Options:
        from policysync.commands.plan import Options

        shard = Shard.parse(self.shard) if self.shard else None
        return Options(self.orgs, shard, self.parallelism, self.environment)


def stack(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    def apply(f: F) -> F:
        for decorator in reversed(decorators):
            f = decorator(f)
        return f

    return apply


def tree_options(f: F) -> F:
    """--config and --policies, handed to the command as its `settings`."""

    @functools.wraps(f)
    def command(*args: Any, config: Path | None, policies: Path | None, **kwargs: Any) -> Any:
        return f(*args, settings=settings_of(config, policies), **kwargs)

    return stack(config_option, policies_option)(cast(F, command))


def live_options(f: F) -> F:
    """--env, --org, --shard, --parallelism and --rate-limit, handed over as `live`."""

    @functools.wraps(f)
    def command(
        *args: Any, environment: str | None, orgs: tuple[str, ...], shard: str | None, **kwargs: Any
    ) -> Any:
        pacing = kwargs.pop("parallelism"), kwargs.pop("rate_limit")
        return f(*args, live=Live(orgs, shard, *pacing, environment), **kwargs)

    return stack(env_option, orgs_option, shard_option, *pacing_options)(cast(F, command))


config_option = click.option(
    "--config",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Settings file [default: policysync.toml, or pyproject.toml with [tool.policysync], "
    "here or in the nearest folder above].",
)
policies_option = click.option(
    "--policies",
    type=click.Path(path_type=Path, file_okay=False),
    help="The policies folder [default: policies].",
)
env_option = click.option(
    "--env",
    "environment",
    metavar="NAME",
    help="The environment NAME of the settings ([environments.NAME]): its credentials, its "
    "URL; organizations it lacks are skipped [default: the STYTCH_* or ZENML_PRO_* "
    "variables].",
)
orgs_option = click.option(
    "--org",
    "orgs",
    multiple=True,
    metavar="ID",
    help="Only this organization (repeatable): its organization_id as written in its file, "
    "the file's name (acme for orgs/acme.json), or its live id, slug or external id.",
)
shard_option = click.option(
    "--shard", metavar="I/N", help="Only the organizations of shard I of N."
)
pacing_options = (
    click.option(
        "--parallelism",
        type=click.IntRange(min=1),
        default=16,
        show_default=True,
        help="Requests in flight at most.",
    ),
    click.option(
        "--rate-limit", type=click.FloatRange(min=0, min_open=True), help="Requests/s ceiling."
    ),
)
journal_option = click.option(
    "--journal",
    type=click.Path(path_type=Path, file_okay=False),
    help="The journal folder [default: the journal setting, .policysync/journal].",
)
auto_approve_option = click.option(
    "--auto-approve", is_flag=True, help="Do not ask for confirmation (for CI)."
)


def format_option(choices: Iterable[str], help: str | None = None) -> Callable[[F], F]:
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(sorted(choices)),
        default="text",
        show_default=True,
        help=help,
    )


def settings_of(config: Path | None, policies: Path | None) -> Settings:
    settings = load_settings(config or find_config(Path()))
    if policies is not None:
        settings = settings.model_copy(update={"policies": str(policies)})
    return settings

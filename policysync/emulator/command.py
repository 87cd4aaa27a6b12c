"""`policysync emulator`: the command that serves the emulator (the CLI adds it)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import click

from policysync.config import find_config, load_settings
from policysync.emulator import MAX_BODY_BYTES
from policysync.errors import ConfigError, PolicysyncError

if TYPE_CHECKING:
    from pydantic import BaseModel
    from starlette.types import ASGIApp


def _latency(value: str | None) -> tuple[float, float]:
    """`N` or `A-B` milliseconds."""
    if value is None:
        return (0.0, 0.0)
    try:
        low, _, high = value.partition("-")
        bounds = (float(low), float(high or low))
    except ValueError:
        raise click.BadParameter("write N or A-B, in milliseconds") from None
    if not 0 <= bounds[0] <= bounds[1]:
        raise click.BadParameter("write N or A-B with 0 <= A <= B")
    return bounds


_FRACTION = click.FloatRange(0, 1)


@click.command(short_help="Serve a local Stytch- or ZenML Pro-compatible RBAC API.")
@click.option(
    "--provider",
    type=click.Choice(["stytch", "zenml"]),
    default="stytch",
    show_default=True,
    help="Whose API to serve: Stytch's B2B RBAC, or ZenML Pro's organization roles.",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on (0.0.0.0 or :: for every interface).",
)
@click.option("--port", default=8787, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--db",
    type=click.Path(path_type=Path, dir_okay=False),
    help="SQLite file holding the state [default: in memory].",
)
@click.option(
    "--seed",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Initial state (project policy, organizations); applied to an empty database only "
    "[default: a new project's state, without organizations].",
)
@click.option("--project-id", envvar="STYTCH_PROJECT_ID", help="[default: $STYTCH_PROJECT_ID]")
@click.option("--secret", envvar="STYTCH_SECRET", help="[default: $STYTCH_SECRET]")
@click.option(
    "--config",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Settings file, for the [limits] PUT enforces [default: ./policysync.toml].",
)
@click.option(
    "--latency-ms",
    help="Latency of every answer, from the request's arrival: N, or a range A-B.",
)
@click.option("--rate-limit", type=click.FloatRange(min=0, min_open=True), help="Requests/s.")
@click.option("--error-rate", type=_FRACTION, default=0.0, help="Fraction answered 500/503.")
@click.option("--drop-rate", type=_FRACTION, default=0.0, help="Fraction of dropped connections.")
@click.option("--fault-seed", type=int, help="Seed for reproducible faults.")
@click.option(
    "--search-rate-limit",
    type=click.IntRange(min=0),
    default=100,
    show_default=True,
    help="Organization searches per minute, as Stytch allows (0: no limit).",
)
@click.option(
    "--disable-org-policy",
    "disabled",
    multiple=True,
    metavar="ID",
    help="Answer 401 enterprise_endpoint for this organization (repeatable).",
)
@click.option(
    "--max-body-bytes",
    type=click.IntRange(min=1),
    default=MAX_BODY_BYTES,
    show_default=True,
    help="Longest request body read; a longer one is answered 413.",
)
@click.option(
    "--api-key",
    envvar="ZENML_PRO_API_KEY",
    help="zenml: the API key POST /auth/login accepts [default: $ZENML_PRO_API_KEY].",
)
@click.option(
    "--token-ttl",
    type=click.IntRange(min=1),
    default=3600,
    show_default=True,
    help="zenml: seconds a bearer token lives (expires_in).",
)
@click.option("--dump", is_flag=True, help="Print the state of --db as a seed document and exit.")
def emulator(
    provider: str,
    host: str,
    port: int,
    db: Path | None,
    seed: Path | None,
    project_id: str | None,
    secret: str | None,
    config: Path | None,
    latency_ms: str | None,
    rate_limit: float | None,
    error_rate: float,
    drop_rate: float,
    fault_seed: int | None,
    search_rate_limit: int,
    disabled: tuple[str, ...],
    max_body_bytes: int,
    api_key: str | None,
    token_ttl: int,
    dump: bool,
) -> int:
    """Serve Stytch's B2B RBAC API (or, with --provider zenml, ZenML Pro's organization
    roles API) on loopback, with SQLite persistence and faults.

    The official Stytch SDKs work against it unchanged
    (environment="http://127.0.0.1:8787/"). Without --project-id and --secret (or
    $STYTCH_PROJECT_ID and $STYTCH_SECRET) it uses built-in test credentials and prints them.
    PUT enforces Stytch's org-policy rules and the [limits] of the settings file.
    Without --seed, an empty database starts as a new project: Stytch's default project
    policy (roles stytch_admin and stytch_member) and no organizations. --host 0.0.0.0
    (or ::) listens on every interface and prints the loopback URL to use here.

    With --provider zenml, POST /auth/login takes --api-key (or $ZENML_PRO_API_KEY, or a
    built-in test key it prints) for a bearer token living --token-ttl seconds; the
    paths are served at the root and below /api/v1. --project-id, --secret, --config,
    --search-rate-limit and --disable-org-policy are Stytch's only; an empty database
    without --seed starts with no organization.
    """
    import sqlite3

    # Imported here: the CLI loads this module for its --help; the server stack only runs.
    try:
        from policysync.emulator import server
    except ModuleNotFoundError as exc:
        if not _extra_missing(exc):
            raise
        package = (exc.name or "").partition(".")[0]
        raise PolicysyncError(NEEDS_EXTRA.format(module=package)) from None
    from policysync.emulator.faults import Faults

    faults = Faults(_latency(latency_ms), rate_limit, error_rate, drop_rate, fault_seed)
    new: str | None = None  # what an empty database without --seed started with
    try:
        if provider == "zenml":
            from policysync.emulator import zenml_app
            from policysync.emulator.zenml_store import ZenmlSeed, ZenmlStore, seed_problem

            zstore = ZenmlStore(str(db) if db else ":memory:")
            if dump:
                return _dump(db, zstore)
            empty = zstore.is_empty()
            if (to_load := _seed_to_load(db, seed, empty)) is not None:
                zseed = server.read_model(to_load, ZenmlSeed)
                if (problem := seed_problem(zseed)) is not None:
                    raise ConfigError(f"{to_load}: not a valid seed file: {problem}")
                zstore.load(zseed)
            elif empty:
                zstore.load(ZenmlSeed())
                new = "no organizations"
            key = api_key or zenml_app.DEFAULT_API_KEY
            app = zenml_app.build(zstore, key, token_ttl, faults, max_body_bytes)
            shown_key = "(from --api-key or $ZENML_PRO_API_KEY)" if api_key else key
            credentials = [
                "ZenML Pro's organization roles API",
                "ZENML_PRO_API_URL={url}",
                f"ZENML_PRO_API_KEY={shown_key}",
                f"tokens live {token_ttl} s; also served below /api/v1",
            ]
        else:
            from policysync.emulator.seed import DEFAULT_SEED
            from policysync.emulator.store import Store

            limits = load_settings(config or find_config(Path())).limits
            store = Store(str(db) if db else ":memory:")
            if dump:
                return _dump(db, store)
            empty = store.is_empty()
            if (to_load := _seed_to_load(db, seed, empty)) is not None:
                store.load(server.read_seed(to_load, limits))
            elif empty:
                store.load(DEFAULT_SEED)
                new = (
                    "Stytch's default project policy (roles stytch_admin and stytch_member), "
                    "no organizations"
                )
            app = server.build(
                store,
                project_id or server.DEFAULT_PROJECT_ID,
                secret or server.DEFAULT_SECRET,
                limits,
                faults,
                frozenset(disabled),
                search_rate_limit or None,
                max_body_bytes,
            )
            shown_secret = "(from --secret or $STYTCH_SECRET)" if secret else server.DEFAULT_SECRET
            credentials = [
                "Stytch's B2B RBAC API",
                "STYTCH_BASE_URL={url}",
                f"STYTCH_PROJECT_ID={project_id or server.DEFAULT_PROJECT_ID}",
                f"STYTCH_SECRET={shown_secret}",
            ]
    except sqlite3.Error as exc:
        raise PolicysyncError(f"{db}: cannot open the SQLite database: {exc}") from None
    if new is not None:
        credentials.append(f"started empty: {new}; --seed FILE loads a state")
    _serve(app, host, port, db, faults.any, credentials)
    return 0


# What the server stack needs beyond policysync's own dependencies: the `emulator` extra,
# which the pre-commit hook and the composite action do not install.
EXTRA_PACKAGES = frozenset({"starlette", "uvicorn", "httptools"})
NEEDS_EXTRA = (
    "`policysync emulator` needs the emulator extra (no module named {module!r}): "
    "pip install 'policysync[emulator]' (with pipx: pipx install --force "
    "'policysync[emulator] @ <what you installed policysync from>')"
)


def _extra_missing(exc: ModuleNotFoundError) -> bool:
    """Whether `exc` says a package of the `emulator` extra (or a module of one) is
    not installed."""
    return (exc.name or "").partition(".")[0] in EXTRA_PACKAGES


class _Dumpable(Protocol):
    def is_empty(self) -> bool: ...
    def dump(self) -> BaseModel: ...


def _dump(db: Path | None, store: _Dumpable) -> int:
    """--dump: the state of --db as a seed document."""
    if db is None or store.is_empty():
        raise click.UsageError("--dump needs --db naming a database that holds a state")
    click.echo(store.dump().model_dump_json(indent=2))
    return 0


def _seed_to_load(db: Path | None, seed: Path | None, empty: bool) -> Path | None:
    """The --seed to load: into an empty database only (a note otherwise). An empty
    database without --seed starts with a new project's state (the caller's default)."""
    if seed is not None:
        if empty:
            return seed
        click.echo(f"note: {db} already holds a state; --seed {seed} was not applied", err=True)
    return None


def _serve(
    app: ASGIApp, host: str, port: int, db: Path | None, faulty: bool, credentials: list[str]
) -> None:
    """Listen, print what a client needs (credentials[0] names the API, the rest are
    lines with `{url}` in them: a loopback URL when listening on every interface),
    serve until Ctrl-C or SIGTERM."""
    import ipaddress

    from policysync.emulator import server

    try:
        sock = server.bind(host, port)
    except OSError as exc:
        raise PolicysyncError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    url = server.base_url(sock)
    if server.listens_everywhere(sock):
        click.echo(
            f"warning: listening on all interfaces ({host}): reachable from other machines; "
            f"this machine reaches it at {url}",
            err=True,
        )
    elif not ipaddress.ip_address(sock.getsockname()[0]).is_loopback:
        click.echo(f"warning: listening on {host}: reachable from other machines", err=True)
    lines = [f"policysync emulator serving {credentials[0]} at {url}"]
    lines += [f"  {line.format(url=url)}" for line in credentials[1:]]
    lines.append(
        f"  state: {db or 'in memory'}; faults: {'on' if faulty else 'off'}; Ctrl-C stops it"
    )
    # Ctrl-C or SIGTERM from the first line printed on: serve returns
    server.serve(app, sock, lambda: click.echo("\n".join(lines)))
    click.echo("policysync emulator stopped", err=True)

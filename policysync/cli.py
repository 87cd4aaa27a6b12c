"""The command line: parses options, calls one command function, prints, exits.

Exit codes follow Terraform: 0 success, 1 error (usage errors included: 2 is kept for
"changes present" / "drift found"), so a CI job can never mistake one for the other.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from policysync import __version__
from policysync.config import Settings, find_config
from policysync.emulator.command import emulator
from policysync.errors import PolicysyncError, UsageError
from policysync.options import (
    DRIFT_FORMATS,
    EXPORT_FORMATS,
    RUN_FORMATS,
    Live,
    auto_approve_option,
    config_option,
    env_option,
    format_option,
    journal_option,
    live_options,
    orgs_option,
    pacing_options,
    policies_option,
    settings_of,
    stack,
    tree_options,
)
from policysync.views.common import error_text, visible
from policysync.views.plan import PLAN_RENDERERS
from policysync.views.terminal import ProgressStart, colour_choice, confirm, progress
from policysync.views.test import INVALID_RENDERERS, TEST_RENDERERS
from policysync.views.validate import VALIDATE_RENDERERS

if TYPE_CHECKING:  # imported when used: `validate` in pre-commit hooks skips httpx
    from policysync.commands.plan import PlanRun
    from policysync.journal import RunKind
    from policysync.providers.base import Provider
    from policysync.report import ValidationReport
    from policysync.result import RunResult
    from policysync.runlock import RunLock

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report a process SIGINT ended


T = TypeVar("T")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="policysync")
def cli() -> None:
    """Organization-scoped RBAC roles (Stytch B2B, ZenML Pro) kept in git.

    `policysync validate` checks the policy files offline. Settings come from
    policysync.toml (or [tool.policysync] in pyproject.toml) here or in the nearest
    folder above.

    \b
    Exit codes:
      0    success: valid files; no changes; no drift
      1    invalid files, a usage error, or any other error
      2    changes pending (plan --detailed-exitcode), drift found (drift)
      130  interrupted (Ctrl-C)

    \b
    Shell completion, in ~/.bashrc (zsh and fish: see the README):
      eval "$(_POLICYSYNC_COMPLETE=bash_source policysync)"
    """


@cli.command(short_help="Check policy files offline: schemas, the provider's rules, limits.")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path, exists=True))
@config_option
@policies_option
@format_option(
    VALIDATE_RENDERERS, "text for people, json for programs, github for workflow annotations."
)
@click.option("--strict", is_flag=True, help="Warnings fail the run too.")
@click.option(
    "--changed-since",
    metavar="REF",
    help="Only the files changed since the git commit REF (and what depends on them).",
)
def validate(
    paths: tuple[Path, ...],
    config: Path | None,
    policies: Path | None,
    fmt: str,
    strict: bool,
    changed_since: str | None,
) -> int:
    """Check policy files against the schemas and Stytch's rules, offline.

    PATHS are policies folders (holding project.json, orgs/ and maybe templates/ and
    tests/) or single files; without PATHS the policies folder is checked. --changed-since
    REF checks the organization files added or changed since REF (committed or not), with
    the files naming the same organizations and the policy tests; a change to
    project.json, a template, the schemas, a house rule or the settings file checks every
    file. Exit 0 when valid, 1 otherwise.
    """
    from policysync.commands.validate import run_validate  # its processes: validate's own

    settings = settings_of(config, policies)
    run = run_validate(settings, paths, strict, changed_since, config or find_config(Path()))
    for note in run.notes:
        click.echo(visible(note), err=True)
    click.echo(VALIDATE_RENDERERS[fmt](run.report))
    return EXIT_OK if run.report.valid else EXIT_ERROR


@cli.command("test", short_help="Run the policy tests offline: what members may and may not do.")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path, exists=True))
@config_option
@policies_option
@format_option(
    TEST_RENDERERS,
    "text for people, json for programs, github for workflow annotations, junit for CI "
    "test reports.",
)
def test_command(
    paths: tuple[Path, ...], config: Path | None, policies: Path | None, fmt: str
) -> int:
    """Check the policy tests (policies/tests/*.json) against the policy files, offline,
    the way the provider authorizes: a member may take an action on a resource when one
    of its roles grants that action, or "*", on that resource. Stytch: every member also
    holds stytch_member, and a role is a project role or one of the organization's.

    PATHS are test files or folders of them; without PATHS, the policies folder's tests/.
    The policy files and the test files are validated first: an error stops the run.
    Every failure is printed at its line in the test file, with the roles that grant or
    lack the permission. Exit 0 when every assertion holds (or there is no test); 1 when
    one fails, or on any error.
    """
    from policysync.commands.test import run_tests

    run = run_tests(settings_of(config, policies), paths)
    for note in run.notes:
        click.echo(f"note: {visible(note)}", err=True)
    if not _valid(run.report) or run.result is None:
        if fmt in INVALID_RENDERERS:
            click.echo(INVALID_RENDERERS[fmt](run.report))
        return EXIT_ERROR
    click.echo(TEST_RENDERERS[fmt](run.result))
    return EXIT_OK if run.result.passed else EXIT_ERROR


@cli.command("fmt", short_help="Rewrite policy files in the canonical form export writes.")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path, exists=True))
@config_option
@policies_option
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if a file is not canonical.")
def fmt_command(
    paths: tuple[Path, ...], config: Path | None, policies: Path | None, check: bool
) -> int:
    """Rewrite the policy files in the one canonical form `policysync export` writes:
    keys in the documented order; roles, permissions and actions sorted; two-space
    indent; a final newline. Each file keeps its $schema and organization_id as
    written, and grants exactly what it granted.

    PATHS are policies folders or single files, as for `validate`; without PATHS the
    policies folder is formatted. The files are validated first: with an error, none is
    written. Prints the files rewritten (with --check: those that would be, writing
    nothing). Exit 0 when done (with --check: every file is canonical), 1 otherwise.
    """
    from policysync.commands.fmt import run_fmt
    from policysync.views.fmt import render_files, summary_line

    result = run_fmt(settings_of(config, policies), paths, check)
    if not _valid(result.report):
        click.echo("error: the files were not formatted: fix the errors first", err=True)
        return EXIT_ERROR
    if result.changed:
        click.echo(render_files(result))
    click.echo(summary_line(result), err=True)
    return EXIT_ERROR if check and result.changed else EXIT_OK


@cli.command(short_help="Show what apply would change live.")
@tree_options
@format_option(
    PLAN_RENDERERS,
    "text for people, markdown for pull requests and job summaries, json for programs.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False, writable=True),
    help="Save the plan (JSON, with a checksum) for `policysync apply FILE`.",
)
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when there are changes (0: none).")
@click.option(
    "--against-ref",
    metavar="REF",
    help="Offline: plan the files at HEAD against the files at git commit REF as live "
    "(no credentials needed).",
)
@live_options
def plan(
    settings: Settings,
    fmt: str,
    out: Path | None,
    detailed_exitcode: bool,
    against_ref: str | None,
    live: Live,
) -> int:
    """Compare the policy files with live roles and print the changes apply would make.

    Reads STYTCH_PROJECT_ID, STYTCH_SECRET and (optionally) STYTCH_BASE_URL, or with
    provider = "zenml" ZENML_PRO_API_KEY and (optionally) ZENML_PRO_API_URL; with --env
    NAME, the variables [environments.NAME] of the settings names, and an organization
    that environment lacks is skipped, not an error. The files are validated first (for
    Stytch against the live project policy); an invalid tree stops the plan.
    Exit 0: no changes (or changes, without --detailed-exitcode); 2: changes, with
    --detailed-exitcode; 1: any error, an organization that could not be read included.
    With --against-ref REF nothing live is read: the files at REF play live.
    """
    # Imported here: `validate`, which runs in pre-commit hooks, should not pay for httpx.
    from policysync import planfile
    from policysync.commands.plan import plan_against_ref
    from policysync.plan import plan_is_empty

    if against_ref is not None:
        if out is not None:
            raise UsageError("--out saves a plan for apply; an --against-ref plan is never applied")
        if live.environment is not None:
            raise UsageError(
                "--env names the live system to plan against; an --against-ref plan reads "
                "none (the files at REF play live): give one or the other"
            )
        run = plan_against_ref(settings, against_ref, live.options())
    else:
        run = _plan_live(settings, _provider(settings, live), live)
    for note in run.notes:
        click.echo(f"note: {visible(note)}", err=True)
    if not _valid(run.report) or run.plan is None:
        return EXIT_ERROR
    if fmt == "json":  # in pieces: a large plan is never one string in memory
        for chunk in run.plan.json_chunks():
            click.echo(chunk, nl=False)
        click.echo()
    else:
        click.echo(PLAN_RENDERERS[fmt](run.plan))
    if out is not None:
        planfile.save(run.plan, out)
        click.echo(f"Saved the plan to {out}.", err=True)
    if run.plan.summary.failed:
        return EXIT_ERROR
    return EXIT_CHANGES if detailed_exitcode and not plan_is_empty(run.plan) else EXIT_OK


@cli.command(short_help="Make live roles match the policy files, or a saved plan.")
@click.argument("plan_file", metavar="[PLANFILE]", required=False, type=click.Path(path_type=Path))
@tree_options
@format_option(RUN_FORMATS, "How to print the result (the plan goes to stderr).")
@auto_approve_option
@click.option("--allow-delete", is_flag=True, help="Allow deleting roles (members lose them).")
@click.option(
    "--allow-delete-in-use",
    is_flag=True,
    help="Also allow deleting roles that members, rules or assignments depend on.",
)
@click.option("--force", is_flag=True, help="Allow a plan changing very many organizations.")
@live_options
@journal_option
def apply(
    plan_file: Path | None,
    settings: Settings,
    fmt: str,
    auto_approve: bool,
    allow_delete: bool,
    allow_delete_in_use: bool,
    force: bool,
    live: Live,
    journal: Path | None,
) -> int:
    """Write the desired roles live (Stytch or ZenML Pro), journaling what each write
    replaces.

    Without PLANFILE it plans first, shows the plan and asks for confirmation
    (--auto-approve skips the question; without a terminal it is required). With
    PLANFILE (from `plan --out`) it applies exactly that reviewed plan, refused unless
    made for this project and this environment (--env). Per
    organization: live must still be what the plan saw (else it is skipped as stale),
    the prior policy is journaled before the PUT, and the echo is checked. Deleting a
    role needs --allow-delete; deleting one that members, implicit-assignment rules or
    assignments depend on needs --allow-delete-in-use too (checked again just before
    each write: a role that came into use since the plan is skipped). One apply or
    rollback at a time per journal folder: another is refused, naming it. Exit 0 only
    when every planned change was applied; 1 otherwise (a write whose outcome is unknown
    included); 130 after Ctrl-C, which lets the organizations in progress finish.
    """

    from policysync import planfile
    from policysync.commands.apply import apply as run_apply
    from policysync.guards import check_guards
    from policysync.views.plan import render_text

    provider = _provider(settings, live)
    if plan_file is not None:
        if live.orgs or live.shard:
            raise UsageError("a saved plan is applied whole: --org and --shard go to `plan`")
        the_plan = planfile.load(plan_file, provider.project_id, live.environment)
    else:
        run = _plan_live(settings, provider, live)
        if not _valid(run.report) or run.plan is None:
            return EXIT_ERROR
        the_plan = run.plan
    click.echo(render_text(the_plan), err=True)
    if not the_plan.changes:
        return EXIT_OK
    check_guards(the_plan, allow_delete, force, settings.apply, allow_delete_in_use)
    if the_plan.summary.changed and plan_file is None and not auto_approve:
        confirm(f"Apply these changes to project {provider.project_id}?")
    base = journal or Path(settings.journal)
    held = _locked(base, "apply")

    def applied(tick: ProgressStart | None) -> Coroutine[Any, Any, RunResult]:
        return run_apply(
            provider,
            the_plan,
            base,
            live.parallelism,
            held.started,
            tick,
            allow_in_use=allow_delete_in_use,
        )

    return _report(fmt, "writing org policies", applied, provider)


@cli.command(short_help="Put back the policies an apply run replaced.")
@click.argument("run_id")
@config_option
@format_option(RUN_FORMATS, "How to print the result.")
@auto_approve_option
@env_option
@orgs_option
@stack(*pacing_options)
@journal_option
def rollback(
    run_id: str,
    config: Path | None,
    fmt: str,
    auto_approve: bool,
    environment: str | None,
    orgs: tuple[str, ...],
    parallelism: int,
    rate_limit: float | None,
    journal: Path | None,
) -> int:
    """Put back each organization's prior policy from run RUN_ID's journal, where live
    is still what that run wrote (an organization changed since is reported and left
    alone). Journaled like an apply, so a rollback can be rolled back. A journal that
    does not add up (an entry edited, missing, copied) is refused, naming each problem;
    --org can still roll back the intact entries. Exit 0 when every organization was
    restored or had nothing to undo; 1 otherwise; 130 after Ctrl-C. Holds the journal
    folder's lock, as apply does.
    """

    from policysync.commands.rollback import check_environment, named_orgs, rollback_entries
    from policysync.commands.rollback import rollback as run_rollback
    from policysync.journal import read_run

    settings = settings_of(config, None)
    provider = _provider(settings, Live(orgs, None, parallelism, rate_limit, environment))
    base = journal or Path(settings.journal)
    held = _locked(base, "rollback")  # the run read is not being written meanwhile
    journaled = read_run(base, run_id)  # an unknown run is refused before asking
    check_environment(journaled, environment)
    only = _run(named_orgs(journaled, provider, orgs), provider) if orgs else []
    wanted = rollback_entries(journaled, provider.project_id, only)
    summary = journaled.summary
    if not journaled.has_manifest:
        click.echo(
            f"note: run {summary.run_id} has no manifest (it did not finish): its entries "
            "are checked by their file names and prior fingerprints only",
            err=True,
        )
    if not auto_approve:
        confirm(
            f"Put back the prior policies of up to {len(wanted)} organizations written by "
            f"run {summary.run_id} in project {provider.project_id}?"
        )
    policies = Path(settings.policies)

    def rolled_back(tick: ProgressStart | None) -> Coroutine[Any, Any, RunResult]:
        return run_rollback(
            provider,
            base,
            summary.run_id,
            wanted,
            policies,
            parallelism,
            held.started,
            tick,
            environment,
        )

    return _report(fmt, "putting back org policies", rolled_back, provider)


@cli.command(short_help="Tell whether live roles still match the policy files.")
@tree_options
@format_option(
    DRIFT_FORMATS, "text for people, markdown for job summaries and issues, json for programs."
)
@click.option(
    "--report",
    "report_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write the JSON result (schemas/drift.schema.json) to this file.",
)
@click.option(
    "--all-orgs",
    is_flag=True,
    help="Also search every organization for org-specific roles that no file manages.",
)
@click.option("--search-page-size", type=click.IntRange(1, 1000), default=1000, hidden=True)
@live_options
def drift(
    settings: Settings,
    fmt: str,
    report_file: Path | None,
    all_orgs: bool,
    search_page_size: int,
    live: Live,
) -> int:
    """Compare live roles (Stytch or ZenML Pro) with the policy files, for a scheduled job.

    Reports the roles added, removed or changed live outside git, managed files whose
    organization no longer exists, a policies/project.json out of date with the live
    project policy and, with --all-orgs, organizations that have org-specific roles but
    no file. Exit 0: no drift; 2: drift found; 1: any error (an organization that could
    not be read included).
    """

    from policysync.commands.drift import drift_live, write_report
    from policysync.views.drift import DRIFT_RENDERERS

    provider, options = _provider(settings, live), live.options()
    with progress("reading live org policies") as tick:
        run = _run(
            drift_live(settings, provider, options, all_orgs, search_page_size, tick), provider
        )
    if not _valid(run.validation) or run.report is None:
        return EXIT_ERROR
    click.echo(DRIFT_RENDERERS[fmt](run.report))
    if report_file is not None:
        write_report(run.report, report_file)
        click.echo(f"Wrote the drift report to {report_file}.", err=True)
    if run.report.summary.failed or run.report.search_error is not None:
        return EXIT_ERROR
    return EXIT_CHANGES if run.report.drift_found else EXIT_OK


@cli.command(short_help="Write live org policies (and the project policy) into the files.")
@tree_options
@format_option(EXPORT_FORMATS, "How to print the result.")
@click.option(
    "--org",
    "orgs",
    multiple=True,
    metavar="ID",
    help="This organization: its id, slug or external id, or its file's name (repeatable).",
)
@click.option("--all-orgs", is_flag=True, help="Also every organization with org-specific roles.")
@env_option
@click.option(
    "--branch",
    metavar="NAME",
    help="Commit the files on the new git branch NAME (from HEAD) instead of writing them; "
    "the current checkout is left as it is.",
)
@click.option("--search-page-size", type=click.IntRange(1, 1000), default=1000, hidden=True)
@stack(*pacing_options)
def export(
    settings: Settings,
    fmt: str,
    orgs: tuple[str, ...],
    all_orgs: bool,
    environment: str | None,
    branch: str | None,
    search_page_size: int,
    parallelism: int,
    rate_limit: float | None,
) -> int:
    """Write the live org policies into policies/orgs/ and the live project policy into
    policies/project.json, in a canonical form (exporting unchanged data again changes
    no byte).

    Without --org or --all-orgs, the organizations that have files are refreshed. --org
    exports that organization (into its file, or a new file named after its slug);
    --all-orgs adds every organization that has org-specific roles (found through
    organization search). A file keeps its name, $schema and organization_id. Exit 0
    when everything asked for was exported; 1 otherwise.
    """

    from policysync.commands.export import Request, export_live
    from policysync.views.export import EXPORT_RENDERERS

    provider = _provider(settings, Live(orgs, None, parallelism, rate_limit, environment))
    request = Request(orgs, all_orgs, branch, parallelism, search_page_size, environment)
    with progress("reading live org policies") as tick:
        result = _run(export_live(settings, provider, request, tick), provider)
    click.echo(EXPORT_RENDERERS[fmt](result))
    return EXIT_ERROR if result.problems else EXIT_OK


@cli.command(short_help="Print or write the published JSON Schemas.")
@click.argument("name", required=False)
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    help="Write NAME.schema.json into this folder (made if missing) instead of printing.",
)
def schema(name: str | None, out: Path | None) -> int:
    """Print the JSON Schema NAME (draft 2020-12), or with --out write it (without NAME:
    all of them) as NAME.schema.json. Without NAME or --out, list the names:

    \b
    org-policy         policies/orgs/*.json (Stytch)
    template           policies/templates/*.json (Stytch)
    project-policy     policies/project.json (Stytch)
    zenml-org-roles    policies/orgs/*.json (ZenML Pro)
    zenml-template     policies/templates/*.json (ZenML Pro)
    zenml-permissions  policies/permissions.json (ZenML Pro)
    policy-tests       policies/tests/*.json (Stytch)
    zenml-policy-tests policies/tests/*.json (ZenML Pro)
    validate-report    validate --format json
    test-report        test --format json
    plan               plan --format json, and saved plans
    run-result         apply and rollback --format json
    drift              drift --format json and --report

    The policy files' `$schema` keys point at a `schemas` folder beside `policies/`:
    `policysync schema --out schemas` run there writes it.
    """
    from policysync import schemas

    if name is not None and name not in schemas.SCHEMA_MODELS:
        known = ", ".join(schemas.SCHEMA_MODELS)
        raise UsageError(f"no schema is named {name!r}: the schemas are {known}")
    if out is not None:
        for path in schemas.write(out, [name] if name else list(schemas.SCHEMA_MODELS)):
            click.echo(path)
    elif name is None:
        click.echo("\n".join(schemas.SCHEMA_MODELS))
    else:
        click.echo(schemas.render(name), nl=False)
    return EXIT_OK


@cli.command("init", short_help="Start a policy repository: settings, files, schemas, workflows.")
@click.argument("directory", default=".", type=click.Path(path_type=Path, file_okay=False))
@click.option(
    "--provider",
    type=click.Choice(["stytch", "zenml"]),
    default="stytch",
    show_default=True,
    help="The live system: Stytch B2B, or ZenML Pro's organization roles.",
)
@click.option(
    "--from-live",
    is_flag=True,
    help="Export the live project policy (Stytch) instead of a placeholder, with the "
    "credentials `export` reads.",
)
@click.option(
    "--all-orgs",
    is_flag=True,
    help="With --from-live: also export every organization with org-specific roles.",
)
@click.option(
    "--repository",
    metavar="OWNER/NAME",
    help="policysync's GitHub repository, whose workflows the callers call "
    "[default: the placeholder OWNER/policysync].",
)
@click.option(
    "--ref",
    metavar="SHA",
    help=f"The full commit SHA of policysync's tag v{__version__}, at which the callers call "
    "its workflows [default: a placeholder of zeros].",
)
@click.option("--force", is_flag=True, help="Replace the files that exist with other contents.")
@stack(*pacing_options)
def init_command(
    directory: Path,
    provider: str,
    from_live: bool,
    all_orgs: bool,
    repository: str | None,
    ref: str | None,
    force: bool,
    parallelism: int,
    rate_limit: float | None,
) -> int:
    """Write a new policy repository into DIRECTORY (default: here; made if missing):
    policysync.toml; policies/ with orgs/ and, for Stytch, project.json (a new project's
    policy, or with --from-live the live one), for ZenML Pro permissions.json; schemas/
    (their $schema keys resolve there); a .gitignore leaving out the journal; and
    .github/workflows/policy-{pr,drift,apply,rollback}.yml, short callers of policysync's
    reusable workflows pinned to the commit of this version's tag (--repository and
    --ref; placeholders without them).

    A file that exists with other contents stops init before it writes anything (--force
    replaces it); a .gitignore is added to. --from-live --all-orgs also exports every
    organization with org-specific roles, as `policysync export --all-orgs` does. Exit 0
    when done; 1 otherwise.
    """
    from policysync import scaffold
    from policysync.commands.init import FromLive, init, settings_for
    from policysync.views.init import next_steps, render_text

    if all_orgs and not from_live:
        raise UsageError("--all-orgs exports live organizations: it goes with --from-live")
    pinned = scaffold.pins(repository, ref)
    if not from_live:
        result = _run(init(directory, provider, pinned, force))
    else:
        live = Live((), None, parallelism, rate_limit)
        source = _provider(settings_for(directory, provider), live)
        with progress("reading live org policies") as tick:
            exporting = FromLive(source, all_orgs, parallelism, tick)
            result = _run(init(directory, provider, pinned, force, exporting), source)
    click.echo(render_text(result))
    click.echo(next_steps(result), err=True)
    return EXIT_ERROR if result.export is not None and result.export.problems else EXIT_OK


def _plan_live(settings: Settings, provider: Provider, live: Live) -> PlanRun:
    from policysync.commands.plan import plan_live  # the validator with it

    with progress("reading live org policies") as tick:
        return _run(plan_live(settings, provider, live.options(), tick), provider)


def _locked(base: Path, kind: RunKind) -> RunLock:
    """The lock of the journal folder `base`, held until the command ends."""
    from policysync.runlock import hold

    held = click.get_current_context().with_resource(hold(base, kind))
    if held.note:
        click.echo(f"note: {held.note}", err=True)
    return held


def _report(
    fmt: str,
    label: str,
    main: Callable[[ProgressStart | None], Coroutine[Any, Any, RunResult]],
    provider: Provider,
) -> int:
    """Run an apply or rollback (with a progress bar named `label` on a terminal),
    print its result (a partial one if it stopped early, with why on stderr), and say
    how it ended."""
    from policysync.errors import RunStopped
    from policysync.views.run import RUN_RENDERERS, stopped_message

    try:
        with progress(label) as tick:  # the bar ends before the result is printed
            result = _run(main(tick), provider)
    except RunStopped as stopped:
        click.echo(RUN_RENDERERS[fmt](stopped.result))
        click.echo(stopped_message(stopped.result, stopped.reason, stopped.interrupted), err=True)
        return EXIT_INTERRUPTED if stopped.interrupted else EXIT_ERROR
    click.echo(RUN_RENDERERS[fmt](result))
    return EXIT_OK if result.complete else EXIT_ERROR


def _valid(report: ValidationReport) -> bool:
    """Whether the files were valid; the diagnostics of their validation on stderr."""
    if report.diagnostics:
        click.echo(VALIDATE_RENDERERS["text"](report), err=True)
    return report.valid


def _provider(settings: Settings, live: Live) -> Provider:
    """The provider of the settings, built once, from the environment variables: those
    of the environment `--env` names, or else the provider's standard ones."""
    from policysync.providers import Pacing, build

    environment = settings.environment(live.environment)  # an unknown name: refused
    pacing = Pacing(live.parallelism, live.rate_limit, settings.requests.max_wait_seconds)
    return build(settings.provider, os.environ, pacing, environment)


cli.add_command(emulator)


def main(argv: list[str] | None = None) -> None:
    """Entry point: the one place that turns errors into messages and exit codes."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        code = cli.main(
            args=argv,
            prog_name="policysync",
            standalone_mode=False,
            color=colour_choice(os.environ),  # every command's output, and click's own
        )
    except click.ClickException as exc:
        exc.show()
        code = EXIT_ERROR
    except click.Abort as exc:  # Ctrl-C (click makes KeyboardInterrupt an Abort), or EOF
        interrupted = isinstance(exc.__cause__, KeyboardInterrupt)
        click.echo("Interrupted." if interrupted else "Aborted.", err=True)
        code = EXIT_INTERRUPTED if interrupted else EXIT_ERROR
    except PolicysyncError as exc:
        click.echo(f"error: {error_text(exc)}", err=True)
        code = EXIT_ERROR
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        code = EXIT_INTERRUPTED
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


def _run(main: Coroutine[Any, Any, T], provider: Provider | None = None) -> T:
    """Run a command's coroutine, inside `async with provider` when it has one."""
    import asyncio

    async def within() -> T:
        try:
            if provider is None:
                return await main
            async with provider:
                return await main
        finally:
            main.close()  # not started when the provider could not be entered

    return asyncio.run(within())


def entry() -> None:
    """The `policysync` command: `main`, then its output flushed. A reader gone
    (`policysync plan | head`) is no error: what is left to write goes nowhere."""
    try:
        main()
    finally:
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())

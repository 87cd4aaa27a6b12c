"""What a command asks or shows on the terminal while it runs: the confirmation before
a write, a progress bar (nothing when there is no terminal to show it on), and whether
output is coloured."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator, Mapping

import click

from policysync.errors import UsageError

ProgressStart = Callable[[int], Callable[[int], None]]  # total -> the per-item callback


def colour_choice(environ: Mapping[str, str]) -> bool | None:
    """Colour as the environment asks for it, or None when it leaves it to each output
    stream: coloured when it is a terminal (`click.echo` checks, stdout and stderr apart).

    NO_COLOR (any value but empty) turns colour off (no-color.org); else FORCE_COLOR
    turns it on, terminal or not, unless it is `0`, which turns it off; else TERM=dumb
    turns it off. The CLI hands the answer to click (`Context.color`), so that every
    command, and click's own messages, follow it."""
    if environ.get("NO_COLOR"):
        return False
    force = environ.get("FORCE_COLOR")
    if force:
        return force != "0"
    if environ.get("TERM") == "dumb":
        return False
    return None


def confirm(question: str) -> None:
    """Ask; anything but `yes` stops the run (UsageError) before any write."""
    if not sys.stdin.isatty():
        raise UsageError(
            "no terminal to confirm on, so nothing was written: review the plan, then run "
            "again with --auto-approve (or apply a saved plan: policysync apply PLANFILE)"
        )
    answer = click.prompt(f"{question} Only 'yes' will be accepted", default="", err=True)
    if answer.strip() != "yes":
        raise UsageError("not confirmed: nothing was written")


@contextlib.contextmanager
def progress(label: str) -> Iterator[ProgressStart | None]:
    """A progress bar on stderr when it is a terminal; None otherwise (a pipe, a file,
    a CI log). The bar is finished (its line ended) when the block ends, before the
    command prints its result."""
    if not sys.stderr.isatty():
        yield None
        return
    with contextlib.ExitStack() as stack:

        def start(total: int) -> Callable[[int], None]:
            bar = stack.enter_context(click.progressbar(length=total, label=label, file=sys.stderr))
            return bar.update

        yield start

"""What a command asks or shows on the terminal while it runs: the confirmation before
a write, and a progress bar. Nothing when there is no terminal to show it on."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

import click

from policysync.errors import UsageError

ProgressStart = Callable[[int], Callable[[int], None]]  # total -> the per-item callback


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
    """A progress bar on stderr when it is a terminal; None otherwise."""
    if not sys.stderr.isatty():
        yield None
        return
    with contextlib.ExitStack() as stack:

        def start(total: int) -> Callable[[int], None]:
            bar = stack.enter_context(click.progressbar(length=total, label=label, file=sys.stderr))
            return bar.update

        yield start

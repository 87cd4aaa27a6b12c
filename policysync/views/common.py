"""What the views share: plurals, names made safe to print, painted symbols, and the
diff fences and collapsed blocks of markdown.

Values read from files or from a provider are printed with invisible characters
escaped, so that no role id or error message can move the cursor of a terminal or forge
a line of the output.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import PurePath

import click

from policysync.diagnostics import q
from policysync.errors import PolicysyncError, ProviderError
from policysync.plan import ResourceChange, RoleDiff

Paint = Callable[[str], str]

MARKDOWN_LIMIT = 65_000  # GitHub refuses comments over 65,536 characters
MARKDOWN_RESERVE = 500  # room for the errors' fence and the note on what was left out
_COLOURS = {"+": "green", "~": "yellow", "-": "red", "!": "red"}


def plain(symbol: str) -> str:
    return symbol


def coloured(symbol: str) -> str:
    return click.style(symbol, fg=_COLOURS[symbol], bold=True)


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def visible(text: str) -> str:
    """`text` on one line, with control and invisible characters escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def error_text(error: PolicysyncError) -> str:
    """An error's message for the terminal: a provider's on one line (it holds the
    server's texts), another's line by line (its line breaks are policysync's), with
    control and invisible characters escaped."""
    text = str(error)
    if isinstance(error, ProviderError):
        return visible(text)
    return "\n".join(map(visible, text.split("\n")))


def name(value: str) -> str:
    """An identifier as is, or quoted when it is empty, padded or holds invisible text."""
    return value if value and value.isprintable() and value.strip() == value else q(value)


def label(file: str, organization_id: str) -> str:
    """The file's name for people, the organization_id of the file for the provider."""
    stem = PurePath(file).stem
    if stem == organization_id:
        return name(stem)
    return f"{name(stem)} ({name(organization_id)})"


def resource_line(change: ResourceChange, paint: Paint) -> str:
    resource = name(change.resource_id)
    if change.action == "create":
        return f"{paint('+')} {resource}: {', '.join(map(name, change.added))}"
    if change.action == "delete":
        return f"{paint('-')} {resource}"
    parts = [
        f"{paint(symbol)} {', '.join(map(name, actions))}"
        for symbol, actions in (("+", change.added), ("-", change.removed))
        if actions
    ]
    return f"{paint('~')} {resource}: {'  '.join(parts)}"


def diff_lines(diff: RoleDiff, paint: Paint) -> list[str]:
    """The lines of one role's changes: description, then resource by resource."""
    lines = [resource_line(change, paint) for change in diff.resources]
    if diff.description is not None:
        before, after = diff.description
        lines.insert(0, f"{paint('~')} description: {q(before)} -> {q(after)}")
    return lines


def _symbol_first(line: str) -> str:
    """`    - audit` as `-     audit`: GitHub colours a diff line by its first character."""
    text = line.lstrip(" ")
    return text[0] + line[: len(line) - len(text)] + text[1:]


def fence(lines: list[str]) -> str:
    # Every line starts with a symbol, and values are on one line (see `visible` and
    # `name`): no line can close the fence early.
    return "\n".join(["```diff", *map(_symbol_first, lines), "```"])


def details(summary: str, lines: list[str]) -> str:
    """A collapsed markdown block: `summary`, then `lines` in a diff fence."""
    return f"<details><summary>{html.escape(summary)}</summary>\n\n{fence(lines)}\n\n</details>"


def fit(sizes: list[int], budget: int) -> int:
    """How many of the leading items fit in `budget` characters."""
    used = 0
    for count, size in enumerate(sizes):
        used += size
        if used > budget:
            return count
    return len(sizes)

"""JSON text → data, with positions for every JSON pointer, computed only when needed.

The fast path is jiter (Rust, strict: no NaN, no duplicate keys). What it refuses goes
through the standard library's parser, whose errors carry positions and whose hooks find
duplicate keys and non-standard constants. Only for a file that has something to report
is the text scanned again (`SourceMap`) to turn JSON pointers into lines and columns, to
place duplicate keys and to measure nesting. The scanner is iterative, so no nesting
depth can crash it.
"""

from __future__ import annotations

import json
import re
from typing import Any, NamedTuple

import jiter

from policysync.diagnostics import pointer as make_pointer

# One token after optional whitespace: punctuation, a string, or a number/literal.
_TOKEN = re.compile(
    r'[ \t\n\r]*(?:([{}\[\],:])|("[^"\\]*(?:\\.[^"\\]*)*")|(-?[0-9][0-9.eE+-]*|true|false|null))',
    re.S,
)


class Problem(NamedTuple):
    """A parse problem, placed by character offset (converted to line/column later)."""

    code: str
    offset: int
    pointer: str
    message: str


class _Frame:
    __slots__ = ("index", "is_object", "pointer", "seen")

    def __init__(self, is_object: bool, pointer: str) -> None:
        self.is_object = is_object
        self.pointer = pointer
        self.index = 0
        self.seen: dict[str, int] = {}


class SourceMap:
    """Where each JSON pointer's value (and key) starts in `text`."""

    def __init__(self, text: str, max_depth: int) -> None:
        self.text = text
        self.values: dict[str, int] = {}
        self.keys: dict[str, int] = {}
        self.duplicates: list[tuple[str, int, int]] = []  # pointer, offset, first offset
        self.too_deep: int | None = None
        self.stopped_at: int | None = None  # first offset the scanner could not read
        self._scan(max_depth)

    def _scan(self, max_depth: int) -> None:
        text, stack = self.text, list[_Frame]()
        state, ptr, pos = "value", "", 0
        while True:
            m = _TOKEN.match(text, pos)
            if m is None:
                rest = text[pos:].lstrip(" \t\n\r")
                if rest:
                    self.stopped_at = len(text) - len(rest)
                return
            tok = m.group(m.lastindex or 0)
            start = m.start(m.lastindex or 0)
            pos = m.end()
            if state in ("value", "value-or-end"):
                if tok == "]" and state == "value-or-end":
                    stack.pop()
                    state = "after-value"
                    continue
                if tok in ",:]}":
                    self.stopped_at = start
                    return
                self.values[ptr] = start
                if tok in "{[":
                    if len(stack) >= max_depth:
                        self.too_deep = start
                        return
                    stack.append(_Frame(tok == "{", ptr))
                    if tok == "{":
                        state = "key-or-end"
                    else:
                        ptr, state = ptr + "/0", "value-or-end"
                else:
                    state = "after-value"
            elif state in ("key", "key-or-end"):
                if tok == "}" and state == "key-or-end":
                    stack.pop()
                    state = "after-value"
                    continue
                if not tok.startswith('"'):
                    self.stopped_at = start
                    return
                frame = stack[-1]
                key = json.loads(tok)
                ptr = frame.pointer + make_pointer(key)
                if key in frame.seen:
                    self.duplicates.append((ptr, start, frame.seen[key]))
                else:
                    frame.seen[key] = start
                self.keys[ptr] = start
                state = "colon"
            elif state == "colon":
                if tok != ":":
                    self.stopped_at = start
                    return
                state = "value"
            else:  # after-value
                if not stack:
                    self.stopped_at = start
                    return
                frame = stack[-1]
                if tok == ",":
                    if frame.is_object:
                        state = "key"
                    else:
                        frame.index += 1
                        ptr, state = f"{frame.pointer}/{frame.index}", "value"
                elif tok == ("}" if frame.is_object else "]"):
                    stack.pop()
                else:
                    self.stopped_at = start
                    return

    def offset_of(self, ptr: str, *, key: bool = False) -> int:
        """Offset of the value (or key) at `ptr`, else of its nearest located ancestor."""
        while True:
            found = (self.keys if key else self.values).get(ptr)
            if found is None and key:
                found = self.values.get(ptr)
            if found is not None:
                return found
            if not ptr:
                return 0
            ptr, key = ptr[: ptr.rfind("/")], False


def position(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column (in characters) of a character offset."""
    line_start = text.rfind("\n", 0, offset) + 1
    return text.count("\n", 0, offset) + 1, offset - line_start + 1


class _NotJson(ValueError):
    """Raised for the non-standard constants Python's parser would otherwise accept."""


def _reject_constant(name: str) -> Any:
    raise _NotJson(name)


def _check_unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _DuplicateKey
    return result


class _DuplicateKey(Exception):
    pass


def parse(text: str, max_depth: int) -> tuple[Any, list[Problem]]:
    """Parse `text` into (data, []), or (None, the problems that prevent it)."""
    try:  # fast path: jiter accepts only strict JSON without duplicate keys
        return jiter.from_json(
            text.encode("utf-8", "surrogatepass"), allow_inf_nan=False, catch_duplicate_keys=True
        ), []
    except ValueError:
        pass  # the standard library's parser, with hooks, says exactly what is wrong
    try:
        data = json.loads(text, object_pairs_hook=_check_unique, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        return None, [Problem("json-syntax", exc.pos, "", _syntax_message(exc))]
    except _NotJson as exc:
        smap = SourceMap(text, max_depth)
        offset = smap.stopped_at or 0
        msg = f"{exc} is not valid JSON: write a number, or a string in double quotes"
        return None, [Problem("json-syntax", offset, "", msg)]
    except (_DuplicateKey, RecursionError):
        pass  # the scan below says what is wrong and where
    except ValueError as exc:  # e.g. an integer with more digits than Python allows
        return None, [Problem("json-syntax", 0, "", f"{exc}; shorten the value")]
    else:
        return data, []
    problems = structural_problems(text, SourceMap(text, max_depth), max_depth)
    if not problems:  # the C parser's recursion limit is below our depth limit
        msg = "nesting too deep to read: remove the extra nesting"
        problems.append(Problem("json-too-deep", 0, "", msg))
    return None, problems


def structural_problems(text: str, smap: SourceMap, max_depth: int) -> list[Problem]:
    """Excess nesting, else duplicate keys: what `json.loads` does not report."""
    if smap.too_deep is not None:
        msg = (
            f"arrays and objects are nested more than {max_depth} levels deep; policy files "
            "need at most 6: remove the extra nesting"
        )
        return [Problem("json-too-deep", smap.too_deep, "", msg)]
    problems = []
    for ptr, offset, first in smap.duplicates:
        line, col = position(text, first)
        key = ptr[ptr.rfind("/") + 1 :].replace("~1", "/").replace("~0", "~")
        problems.append(
            Problem(
                "json-duplicate-key",
                offset,
                ptr,
                f'key "{key}" appears twice in one object (first at line {line}, column {col}); '
                "JSON readers keep only the last one: remove or rename one of them",
            )
        )
    return problems


def _syntax_message(exc: json.JSONDecodeError) -> str:
    hints = {
        "Expecting property name enclosed in double quotes": "a trailing comma, or a key "
        "without double quotes?",
        "Expecting ',' delimiter": "a missing comma between two items?",
        "Extra data": "more than one JSON value in the file: keep one top-level object",
        "Expecting value": "a missing value, a trailing comma or a comment? JSON has neither",
        "Invalid control character at": "a line break or tab inside a string: write \\n or \\t",
        "Unterminated string starting at": "a string without its closing double quote",
    }
    hint = next((h for prefix, h in hints.items() if exc.msg.startswith(prefix)), "")
    return f"invalid JSON: {exc.msg}" + (f" ({hint})" if hint else "")

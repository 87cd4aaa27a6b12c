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


def _parse_int(digits: str) -> int | float:
    # Python refuses to convert integers of more than 4300 digits; no policy value is a
    # number anyway, so such a value only needs to be reported as the wrong type.
    return int(digits) if len(digits) < 4300 else float("inf")


_SURROGATE = re.compile("[\ud800-\udfff]")


def _lone_surrogates(data: Any) -> list[tuple[str, bool]]:
    """(pointer, is_key) of every string holding a lone surrogate, in document order:
    JSON's `\\uXXXX` escapes can produce them, but UTF-8 cannot encode them."""
    found: list[tuple[str, bool]] = []
    stack: list[tuple[str, Any, bool]] = [("", data, False)]  # pointer, value, is a key
    while stack:
        ptr, value, is_key = stack.pop()
        if isinstance(value, str):
            if _SURROGATE.search(value):
                found.append((ptr, is_key))
        elif isinstance(value, dict):
            children: list[tuple[str, Any, bool]] = []
            for key, item in value.items():
                child = ptr + make_pointer(key)
                children += [(child, key, True), (child, item, False)]
            stack.extend(reversed(children))
        elif isinstance(value, list):
            stack.extend(reversed([(f"{ptr}/{i}", item, False) for i, item in enumerate(value)]))
    return found


def parse(text: str, max_depth: int) -> tuple[Any, list[Problem]]:
    """Parse `text` into (data, []), or (None, the problems that prevent it)."""
    try:  # fast path: jiter accepts only strict JSON without duplicate keys
        return jiter.from_json(
            text.encode("utf-8", "surrogatepass"), allow_inf_nan=False, catch_duplicate_keys=True
        ), []
    except ValueError:
        pass  # the standard library's parser, with hooks, says exactly what is wrong
    try:
        data = json.loads(
            text,
            object_pairs_hook=_check_unique,
            parse_constant=_reject_constant,
            parse_int=_parse_int,
        )
    except json.JSONDecodeError as exc:
        return None, [_syntax_problem(text, exc)]
    except _NotJson as exc:
        smap = SourceMap(text, max_depth)
        offset = smap.stopped_at or 0
        msg = f"{exc} is not valid JSON: write a number, or a string in double quotes"
        return None, [Problem("json-syntax", offset, "", msg)]
    except (_DuplicateKey, RecursionError):
        pass  # the scan below says what is wrong and where
    else:
        found = _lone_surrogates(data)
        if not found:
            return data, []
        smap = SourceMap(text, max_depth)
        msg = (
            "an escaped lone UTF-16 surrogate (\\ud800 to \\udfff without its pair) is not a "
            "character, and Stytch cannot store it: remove it or write the whole character"
        )
        return None, [
            Problem("json-surrogate", smap.offset_of(ptr, key=is_key), ptr, msg)
            for ptr, is_key in found
        ]
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


_PLAIN = {  # the standard library's messages, in a user's terms
    "Expecting value": "a value is expected here",
    "Expecting property name enclosed in double quotes": "a key in double quotes is expected here",
    "Expecting ',' delimiter": "a comma is expected here",
    "Expecting ':' delimiter": "a colon is expected here",
    "Extra data": "more data after the end of the JSON value",
    "Invalid control character at": "a line break, tab or control character inside a string",
    "Unterminated string starting at": "a string that is never closed",
    "Invalid \\escape": "an invalid backslash escape in a string",
    "Invalid \\uXXXX escape": "an invalid \\u escape in a string (write \\u and 4 hex digits)",
}


def _syntax_problem(text: str, exc: json.JSONDecodeError) -> Problem:
    """A JSON syntax error, placed where the mistake is and explained in a user's terms."""
    pos, char = exc.pos, text[exc.pos : exc.pos + 1]
    before = text[:pos].rstrip(" \t\n\r")
    message = "invalid JSON: " + _PLAIN.get(exc.msg, exc.msg)
    if (
        exc.msg.startswith(("Expecting value", "Expecting property name"))
        and char in "]}"
        and (before.endswith(","))
    ):
        pos, message = len(before) - 1, "invalid JSON: a trailing comma: remove it"
    elif char == "/":
        message += " (comments are not allowed in JSON: remove them)"
    elif char == "'":
        message += " (strings and keys take double quotes, not single quotes)"
    elif not text[pos:].strip():
        pos = len(before)
        message = "invalid JSON: the file ends before the JSON is complete: close every { and ["
    elif exc.msg.startswith("Invalid control character") and char == "\n":
        message += " (a missing closing double quote? a line break is written \\n)"
    elif exc.msg.startswith("Invalid control character"):
        message += " (write a tab as \\t, other control characters as \\uXXXX)"
    elif exc.msg.startswith("Expecting ',' delimiter"):
        message += " (a missing comma between two items?)"
    elif exc.msg.startswith("Extra data"):
        message += " (keep one top-level object per file)"
    return Problem("json-syntax", pos, "", message)

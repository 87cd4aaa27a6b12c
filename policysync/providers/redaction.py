"""The secret scrubbed from texts made elsewhere (server answers, httpx errors), in every
form it can take there.

A proxy's page or an error body may show the secret (or the Basic credential holding
it) as is, JSON-escaped (`\\"`, `\\/`, `\\u00e9`), percent-encoded (`%2F`, `+`) or
HTML-escaped (`&amp;`, `&#x27;`), or in two of these at once (a JSON body quoted on an
HTML page), one character in one form and the next in another: each character of a
credential is matched in any of its forms, so every mix is found. A
snippet of such a text is scrubbed before it is cut, and a cut never leaves the start of
a credential at its end.

A credential is replaced wherever its text occurs, so a very short secret would mangle
every message ("test" in "test.stytch.com"): credentials shorter than
MIN_SECRET_LENGTH are refused.
"""

from __future__ import annotations

import html.entities
import json
import re
from functools import cache
from urllib.parse import quote

# Stytch's secrets are about 50 characters: a much shorter one is a placeholder.
MIN_SECRET_LENGTH = 16
MASK = "***"
_JSON_SHORT = {
    '"': '\\"',
    "\\": "\\\\",
    "/": "\\/",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}


@cache
def _forms(char: str) -> tuple[str, ...]:
    """`char` as it may be written, longest first: as is, or in one of its forms
    (`_encoded`), or that form written again in JSON, HTML or a URL (a JSON body quoted
    on an HTML page)."""
    once = _encoded(char)
    forms = set(once)
    for form in once - {char}:
        forms |= {json.dumps(form)[1:-1], html.escape(form), quote(form, safe="")}
    return tuple(sorted(forms, key=len, reverse=True))


def _encoded(char: str) -> set[str]:
    """`char` as is, JSON-escaped, percent-encoded or HTML-escaped: hexadecimal digits in
    either case, numeric references with the zeros some encoders pad them with."""
    code = ord(char)
    if code > 0xFFFF:  # JSON writes it as a surrogate pair
        units = [0xD800 + ((code - 0x10000) >> 10), 0xDC00 + ((code - 0x10000) & 0x3FF)]
    else:
        units = [code]
    utf8 = char.encode("utf-8", "surrogatepass")
    forms = {char, _JSON_SHORT.get(char, char), "+" if char == " " else char}
    forms |= {f"&#{code};", f"&#{code:03d};", f"&#{code:04d};"}
    forms |= {f"&{name}" for name in _entity_names().get(char, ())}
    for case in (str.lower, str.upper):
        forms.add("".join(f"\\u{case(f'{unit:04x}')}" for unit in units))
        forms.add("".join(f"%{case(f'{byte:02x}')}" for byte in utf8))
        forms |= {f"&#{x}{case(f'{code:{width}x}')};" for x in "xX" for width in ("", "04")}
    return forms


@cache
def _entity_names() -> dict[str, tuple[str, ...]]:
    """HTML's named character references (`amp;`), by the character they stand for."""
    names: dict[str, list[str]] = {}
    for name, text in html.entities.html5.items():
        if len(text) == 1 and name.endswith(";"):
            names.setdefault(text, []).append(name)
    return {char: tuple(found) for char, found in names.items()}


def _is_start(text: str, credential: str) -> bool:
    """Whether `text` (not empty) is how `credential` begins in some of its forms, the
    form of its last character possibly cut short (`%C3` of `%C3%A9`)."""
    ends = {0}
    for char in credential:
        following = set()
        for end in ends:
            rest = text[end:]
            for form in _forms(char):
                if form.startswith(rest):
                    return True
                if rest.startswith(form):
                    following.add(end + len(form))
        ends = following
        if not ends:
            return False
    return False  # the whole credential and more: not a start


class Redactor:
    """A function removing credentials from a text, in whatever form they are written
    there; and `snippet`, the start of such a text that is safe to show."""

    def __init__(self, *credentials: str) -> None:
        if any(len(c) < MIN_SECRET_LENGTH for c in credentials):
            raise ValueError(f"a credential to redact has at least {MIN_SECRET_LENGTH} characters")
        # Longest first: a shorter one may be part of a longer one.
        self._credentials = tuple(sorted(set(credentials), key=len, reverse=True))
        self._pattern = _pattern(self._credentials)
        # The longest a credential can be written (a character's form is up to 36
        # characters long: `%26CounterClockwiseContourIntegral%3B`).
        self._longest = max(sum(len(_forms(char)[0]) for char in c) for c in self._credentials)

    def __call__(self, text: str) -> str:
        return self._pattern.sub(MASK, text)

    def snippet(self, text: str, limit: int) -> str:
        """At most `limit` characters of the start of `text`, its runs of whitespace as
        one space: scrubbed whole before it is cut, and cut before anything that could
        be the start of a credential."""
        size = limit + self._longest
        while True:
            # Scrubbing only shortens a text: once the scrubbed window is this long, its
            # first `limit` characters come from a part of `text` the window held whole.
            shown = self(" ".join(self(text[:size]).split()))
            if size >= len(text) or len(shown) >= limit + self._longest:
                break
            size *= 4
        if len(shown) <= limit:
            return shown
        cut = shown[:limit]
        for start in range(max(0, limit - self._longest), limit):
            if any(_is_start(cut[start:], c) for c in self._credentials):
                return cut[:start].rstrip()
        return cut


@cache  # a client is made per command, but tests make hundreds with the same secret
def _pattern(credentials: tuple[str, ...]) -> re.Pattern[str]:
    """The pattern of `credentials`, each character in any of its forms."""
    return re.compile(
        "|".join(
            "".join(f"(?:{'|'.join(map(re.escape, _forms(char)))})" for char in credential)
            for credential in credentials
        )
    )

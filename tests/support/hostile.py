"""Secrets that are hard to scrub, and the forms in which a server may write them back."""

from __future__ import annotations

import base64
import html
import json
import re
from urllib.parse import quote, quote_plus

# Each holds what an encoding changes: `\`, `"`, `/` (JSON writes `\/`), `%`, `<`, `&`,
# `'`, a space, letters beyond ASCII and one beyond the Basic Multilingual Plane.
HOSTILE_SECRETS = (
    'secret-test-a\\b"c/d%e<f&g>h',
    "secret-test-\u00e9t\u00e9 \u2603 \U0001f600'+=?x",
    "s3cr3t/\\/\\//%%%%&&&&<<<<",
)


def token(project_id: str, secret: str) -> str:
    """Basic auth's token: the form in which the secret travels."""
    return base64.b64encode(f"{project_id}:{secret}".encode()).decode()


def _json(text: str, ascii_only: bool) -> str:
    return json.dumps(text, ensure_ascii=ascii_only)[1:-1]


def encodings(text: str) -> set[str]:
    """`text` as servers and proxies write it back: as is, JSON-escaped (with and
    without `\\u` escapes, `\\/`, hexadecimal in upper case), percent-encoded (`+` for a
    space, `/` kept or not, hexadecimal in lower case), HTML-escaped (`&#39;`, `&#039;`,
    every character as a reference)."""
    forms = {text, _json(text, True), _json(text, False), quote(text, safe=""), quote(text)}
    forms |= {_json(text, True).replace("/", "\\/"), _json(text, False).replace("/", "\\/")}
    forms.add(re.sub(r"\\u[0-9a-f]{4}", lambda m: m[0][:2] + m[0][2:].upper(), _json(text, True)))
    forms |= {
        quote_plus(text),
        re.sub(r"%[0-9A-F]{2}", lambda m: m[0].lower(), quote(text, safe="")),
    }
    forms |= {html.escape(text), html.escape(text, quote=False)}
    forms.add(html.escape(text).replace("&#x27;", "&#039;"))
    forms.add("".join(f"&#{ord(c)};" for c in text))
    forms.add(quote(_json(text, True), safe=""))
    return forms


def every_form(project_id: str, secret: str) -> set[str]:
    """The encodings of the secret and of its Basic token."""
    return encodings(secret) | encodings(token(project_id, secret))


def leaks(text: str, forms: set[str], window: int = 10) -> list[str]:
    """The pieces of `window` characters of any of `forms` found in `text`."""
    return sorted(
        {form[i : i + window] for form in forms for i in range(max(1, len(form) - window + 1))}
        & {text[i : i + window] for i in range(max(1, len(text) - window + 1))}
    )

"""What the views share: errors and names made safe to print."""

from __future__ import annotations

from policysync.errors import ApiError, ConfigError
from policysync.views.common import error_text, visible


def test_a_providers_error_is_one_line_whatever_the_server_wrote() -> None:
    forged = "no\nerror: forged\r\x1b[2J\u202e"
    error = ApiError(403, f"denied{forged}", forged, f"request{forged}", "acme", "", "Stytch")
    shown = error_text(error)
    assert "\n" not in shown
    assert all(c.isprintable() for c in shown)
    assert shown.count("\\n") == 3
    assert error.message == forged  # the value itself, for JSON, is left exact


def test_policysyncs_own_line_breaks_are_kept_and_the_rest_escaped() -> None:
    error = ConfigError("policysync.toml: two problems\n\x1b[2Ja bad key\nfix it")
    assert error_text(error) == "policysync.toml: two problems\n\\x1b[2Ja bad key\nfix it"


def test_visible_escapes_controls_and_invisible_marks_only() -> None:
    assert visible("été \u2603 a\tb\u202e\u200b") == "été \u2603 a\\tb\\u202e\\u200b"

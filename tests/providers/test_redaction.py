"""The secret scrubbed from server texts, in every form a server may write it back, and
snippets of such texts that never show a part of it."""

from __future__ import annotations

import pytest
from support.hostile import HOSTILE_SECRETS, encodings, every_form, token

from policysync.providers.redaction import MIN_SECRET_LENGTH, Redactor

PROJECT_ID = "project-test-11111111-2222-4333-8444-555555555555"


def redactor(secret: str) -> Redactor:
    return Redactor(secret, token(PROJECT_ID, secret))


@pytest.mark.parametrize("secret", HOSTILE_SECRETS)
def test_every_form_of_the_secret_and_of_its_token_is_scrubbed(secret: str) -> None:
    redact = redactor(secret)
    for form in every_form(PROJECT_ID, secret):
        assert redact(f"<p>{form}</p>{form}") == "<p>***</p>***", form


def test_a_form_mixing_encodings_is_scrubbed() -> None:
    secret = HOSTILE_SECRETS[0]  # secret-test-a\b"c/d%e<f&g>h
    mixed = "secret-test-a\\\\b&quot;c%2Fd\\u0025e&lt;f&#38;g\\u003Eh"
    assert redactor(secret)(f"x {mixed} y") == "x *** y"


def test_text_that_is_not_the_secret_is_left_alone() -> None:
    redact = redactor(HOSTILE_SECRETS[0])
    text = 'secret-test-a\\b"c/d%e<f&g>H, test.stytch.com: 100% <b>&amp;</b> "quoted"'
    assert redact(text) == text


@pytest.mark.parametrize("secret", HOSTILE_SECRETS)
def test_a_snippet_cut_inside_the_secret_shows_no_part_of_it(secret: str) -> None:
    """Wherever the limit falls inside any form of the secret, the snippet shows the mask
    (the secret was scrubbed before the cut) or, for a secret the page itself cut short,
    ends before it."""
    redact = redactor(secret)
    for form in sorted(every_form(PROJECT_ID, secret)):
        for inside in range(1, len(form)):
            before = "<html> " + "x" * (200 - 7 - inside)
            whole = redact.snippet(before + form + " and more</html>", 200)
            assert (before + "*** and more</html>").startswith(whole), (form, inside)
            assert len(whole) > len(before)
            cut_short = redact.snippet(before + form[:-1] + "\x00 and more", 200)
            assert cut_short == before.rstrip(), (form, inside)


@pytest.mark.parametrize("secret", HOSTILE_SECRETS)
def test_a_snippet_is_scrubbed_before_it_is_cut(secret: str) -> None:
    redact = redactor(secret)
    for form in every_form(PROJECT_ID, secret):
        page = "x" * 190 + form + "y" * 10
        assert redact.snippet(page, 200) == "x" * 190 + "***" + "y" * 7
        # secrets repeated shrink when scrubbed: the snippet reads further, never a part
        many = f"{form} " * 200 + "tail"
        assert redact.snippet(many, 200).split() == ["***"] * 50


def test_a_snippet_of_a_short_text_is_all_of_it_on_one_line() -> None:
    redact = redactor(HOSTILE_SECRETS[0])
    assert redact.snippet(" <h1>502\n\n  Bad\tGateway</h1> ", 200) == "<h1>502 Bad Gateway</h1>"
    assert redact.snippet("", 200) == ""


def test_a_credential_too_short_to_redact_is_refused() -> None:
    with pytest.raises(ValueError, match=str(MIN_SECRET_LENGTH)):
        Redactor("s" * (MIN_SECRET_LENGTH - 1))


@pytest.mark.parametrize("secret", HOSTILE_SECRETS)
def test_the_forms_tested_are_what_encoders_write(secret: str) -> None:
    """The test's own list: every form differs from the secret but the first."""
    forms = encodings(secret)
    assert secret in forms
    assert len(forms) >= 8

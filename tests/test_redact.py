"""Secrets people paste are found and masked; ordinary prose is left alone."""

from __future__ import annotations

import pytest

from llm.redact import redact


@pytest.mark.parametrize(("text", "secret", "kind"), [
    ("my password is Summer2024! and it doesn't work", "Summer2024!", "password"),
    ("pwd: hunter", "hunter", "password"),
    ("I changed my password to Tr0ub4dor&3 yesterday", "Tr0ub4dor&3", "password"),
    ('password is "dragon"', "dragon", "password"),
    ("token xoxb-1234-5678-abcdefghijkl", "xoxb-1234-5678-abcdefghijkl", "slack_token"),
    ("key AKIAIOSFODNN7EXAMPLE leaked", "AKIAIOSFODNN7EXAMPLE", "aws_key"),
    ("ghp_abcdefghijklmnopqrstuvwxyz0123456789 is my token", "ghp_abcdefghijklmnopqrstuvwxyz0123456789", "github_token"),
    ("my MFA code is 482913", "482913", "one_time_code"),
    ("card 4111 1111 1111 1111 thanks", "4111 1111 1111 1111", "card_number"),
    ("db at postgres://bob:s3cret@db/x", "s3cret", "url_credentials"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEabc\n-----END RSA PRIVATE KEY-----", "MIIEabc", "private_key"),
    ("api_key=9f8e7d6c5b4a39281706", "9f8e7d6c5b4a39281706", "api_key"),
])
def test_secrets_are_masked(text, secret, kind):
    result = redact(text)
    assert secret not in result.text
    assert "[REDACTED]" in result.text
    assert kind in result.kinds


@pytest.mark.parametrize("text", [
    "my password is expired",
    "password reset please",
    "error 0x80070005 when installing",
    "the code is broken",
    "call me on 555 0100",
    "build 10.0.19045 is below the minimum version",
])
def test_ordinary_prose_is_untouched(text):
    result = redact(text)
    assert result.text == text
    assert not result.found

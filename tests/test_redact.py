"""Secrets people paste are found and masked; ordinary prose is left alone."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from answers.redact import MASK, redact

CORPUS_FILE = Path(__file__).parent / "redaction" / "corpus.jsonl"


def load_corpus(path: Path = CORPUS_FILE) -> list[dict]:
    """Each line: ``id``, ``lang``, ``text`` and, for a line that shares a password, its ``secrets``."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


CORPUS = load_corpus()
SHARED = [case for case in CORPUS if case.get("secrets")]
NEAR_MISSES = [case for case in CORPUS if not case.get("secrets")]


def masked_values(original: str, masked: str) -> tuple[str, ...] | None:
    """What each mask of ``masked`` stands for in ``original``; None when anything outside the masks changed."""
    pattern = "(.+?)".join(re.escape(segment) for segment in masked.split(MASK))
    found = re.fullmatch(pattern, original, re.S)
    return found.groups() if found else None


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
    # phrasings and formats that used to get through
    ("the password for the guest wifi is GuestNet#2024 but it fails", "GuestNet#2024", "password"),
    ("vpn rejects my password Autumn!Leaves99 every time", "Autumn!Leaves99", "password"),
    ("mein Passwort ist Geheim!2024", "Geheim!2024", "password"),
    ("mon mot de passe est Bonjour#2024", "Bonjour#2024", "password"),
    ("mi contraseña es Hola$Mundo22", "Hola$Mundo22", "password"),
    ("my pass\u200bword is Hunter2!Go", "Hunter2!Go", "password"),
    # look-alike letters: Cyrillic "а" and "р", Greek "ο", fullwidth letters and colon
    ("my p\u0430ssword is Summer2024!", "Summer2024!", "password"),
    ("\u0440wd: Zebra#77 please", "Zebra#77", "password"),
    ("passw\u03bfrd is Winter#2025", "Winter#2025", "password"),
    ("\uff50\uff41\uff53\uff53\uff57\uff4f\uff52\uff44\uff1a Secret1", "Secret1", "password"),
    ("t\u043eken x\u043exb-1234-5678-abcdefghijkl", "1234-5678-abcdefghijkl", "slack_token"),
    ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI/K7MDENG", "api_key"),
    ("https://hooks.slack.com/services/T0000AAAA/B0000BBBB/XXXXXXXXXXXXXXXXXXXXXXXX", "XXXXXXXXXXXX", "slack_webhook"),
    ("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", "github_pat_11ABCDEFG", "github_token"),
    ("sk_live_51Habcdefghijklmnopqrstuvwx", "sk_live_51H", "stripe_key"),
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
    "the password for my laptop was rejected",
    "my password expired on Monday",
    "password 2FA setup",
    "Apparently my password can't contain my name?",
    "*password expired* and I'm working from home",
    'complete this sentence: "the admin password for the domain controller is"',
    "I need to pass 10 files to finance",
    "Привет, у меня не работает принтер на третьем этаже",  # Russian prose is not a skeleton of anything
    "Ο εκτυπωτής δεν λειτουργεί",
])
def test_ordinary_prose_is_untouched(text):
    result = redact(text)
    assert result.text == text
    assert not result.found


def test_a_lone_surrogate_is_replaced_so_the_text_can_be_stored_and_logged():
    result = redact("wifi \ud83d broken, password is Maple\ud800Leaf!42")
    result.text.encode("utf-8")
    assert "\ufffd" in result.text.split("password")[0] and "Maple" not in result.text


def test_the_corpus_covers_every_language_with_shared_passwords_and_near_misses():
    assert {case["lang"] for case in SHARED} == {case["lang"] for case in NEAR_MISSES} == {"en", "de", "fr", "es"}
    assert len({case["id"] for case in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize("case", SHARED, ids=[case["id"] for case in SHARED])
def test_a_password_written_any_common_way_is_masked_and_warned_about(case):
    result = redact(case["text"])
    for secret in case["secrets"]:
        assert secret not in result.text
    assert result.password_shared
    # only the values are masked, at their places: the prose around them is the user's, character for character
    values = masked_values(case["text"], result.text)
    assert values is not None, result.text
    assert sorted(value.strip("\"'`‘’“”") for value in values) == sorted(case["secrets"])


@pytest.mark.parametrize("case", NEAR_MISSES, ids=[case["id"] for case in NEAR_MISSES])
def test_prose_about_passwords_is_left_untouched_and_not_warned_about(case):
    result = redact(case["text"])
    assert result.text == case["text"]
    assert not result.found and not result.password_shared

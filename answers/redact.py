"""Find and mask secrets that people paste into chat.

Runs on every message before anything is stored, logged or sent to a model:
passwords typed in plain words ("my password is Summer2024!"), API keys and
tokens, private keys, one-time codes and card numbers. The masked text is also
valid Unicode without invisible characters (see ``answers.normalize.clean_unicode``).

Patterns are matched on a *skeleton* of the text in which look-alike letters
(Cyrillic and Greek homoglyphs, fullwidth forms) stand for their ASCII twins,
one character for one, so "pаssword" with a Cyrillic "а" is still caught; the
masks are applied to the original text at the same offsets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from answers.normalize import clean_unicode

__all__ = ["Redaction", "redact", "mask_known", "skeleton"]

MASK = "[REDACTED]"

_HOMOGLYPHS = {
    **dict(zip("аеорсухіјѕԁԛԝАВЕКМНОРСТХІЈЅ", "aeopcyxijsdqwABEKMHOPCTXIJS")),  # Cyrillic
    **dict(zip("αορνικτυχΑΒΕΖΗΙΚΜΝΟΡΤΥΧ", "aopviktuxABEZHIKMNOPTYX")),  # Greek
    **{chr(code): chr(code - 0xFEE0) for code in range(0xFF01, 0xFF5F)},  # fullwidth ASCII
}
_SKELETON = str.maketrans(_HOMOGLYPHS)


def skeleton(text: str) -> str:
    """``text`` with look-alike letters replaced by ASCII, same length and offsets (for matching only)."""
    return text.translate(_SKELETON)

# (kind, pattern): the whole match is masked.
_TOKEN_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("private_key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)", re.S)),
    ("slack_token", re.compile(r"\bx(?:ox[abposre]|app)-[A-Za-z0-9-]{6,}")),
    ("slack_webhook", re.compile(r"(?<=hooks\.slack\.com/)(?:services|workflows|triggers)/[A-Za-z0-9/_-]{8,}")),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")),
    ("aws_key", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("github_token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})\b")),
    ("google_key", re.compile(r"\bAIza[0-9A-Za-z_-]{30,}\b")),
    ("openai_key", re.compile(r"\bsk-(?:proj-)?[A-Za-z0-9_-]{20,}\b")),
    ("stripe_key", re.compile(r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}\b")),
    ("bearer", re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{16,}")),
    ("url_credentials", re.compile(r"(?<=://)[^\s:/@]+:[^\s@/]+(?=@)")),
)

# Literals every token pattern above needs: text without any of them skips those ten scans (most messages).
_TOKEN_HINT = re.compile(r"-----BEGIN|x(?:ox[abposre]|app)-|hooks\.slack\.com/|eyJ|AKIA|ASIA|gh[pousr]_|github_pat_|AIza"
                         r"|sk-|[rs]k_(?:live|test)_|(?i:bearer)|://[^\s:/@]+:[^\s@/]+@")

# "password is X", "pwd: X", "passcode = X", "the password for the wifi is X", "Passwort ist X": only the value
# (group "secret") is masked. "my password X" (no verb) only when X looks like a password (see _looks_bare_secret).
_PASSWORD_WORDS = r"(?:pass(?:word|wd|code|phrase)?|pwd|pw|pin|passwort|mot de passe|contraseña)"
_BARE_PASSWORD_WORDS = r"(?:password|passwd|passcode|passphrase|pwd|pw|passwort|mot de passe|contraseña)"
_VERB = r"(?:[:=]|\b(?:is|was|to|should be|ist|war|lautet|est|était|es|era)\b)"
_VALUE = r"(?P<secret>\"[^\"]{1,80}\"|'[^']{1,80}'|`[^`]{1,80}`|\S{1,80})"
_ASSIGNED = re.compile(rf"(?i)\b{_PASSWORD_WORDS}(?:\s+(?:for|of|on)\s+(?:[\w.@-]+\s+){{0,3}}?)?\s*{_VERB}\s*{_VALUE}")
_BARE = re.compile(rf"(?i)\b{_BARE_PASSWORD_WORDS}\s+{_VALUE}")
_API_ASSIGNED = re.compile(  # "aws_secret_access_key = ...": the key word may follow an underscore
    r"(?i)(?<![a-z0-9])(?:api[_ -]?key|secret|token|client[_ -]?secret|access[_ -]?key)\s*(?:[:=]|\bis\b)\s*"
    r"(?P<secret>\S{8,200})"
)
_OTP = re.compile(r"(?i)\b(?:mfa|otp|2fa|verification|authenticator|security|one[- ]time|sms)\s+code\s*(?:is|was|:|=)?\s*(?P<secret>\d{6,8})\b")
_CARD = re.compile(r"\b\d(?:[ -]?\d){12,18}\b")
# What each group's pattern cannot match without (a quick scan that skips the slower one).
_PASSWORD_HINT = re.compile(r"(?i)pass|pwd|pw|pin|contrase")
_API_HINT = re.compile(r"(?i)key|secret|token")
_OTP_HINT = re.compile(r"(?i)code")

_PLAIN_WORDS = frozenset(
    "expired expiring wrong incorrect correct not no the a my too reset changed locked working fine ok okay same "
    "invalid required needed asked rejected accepted different new old".split()
)


@dataclass(frozen=True, slots=True)
class Redaction:
    """Masked text and what was found in it."""

    text: str
    kinds: tuple[str, ...] = field(default_factory=tuple)

    @property
    def found(self) -> bool:
        return bool(self.kinds)

    @property
    def password_shared(self) -> bool:
        """True when the user typed a password or one-time code (worth a gentle warning)."""
        return any(kind in ("password", "one_time_code") for kind in self.kinds)


def _looks_secret(value: str, explicit: bool) -> bool:
    """Decide whether the word after "password is" is a password or ordinary prose."""
    if not any(c.isalnum() for c in value):  # a stray quote or dash, not a value
        return False
    if value[:1] in "\"'`":
        return True
    bare = value.rstrip(".,;)")
    if not bare or bare.lower() in _PLAIN_WORDS:
        return False
    if explicit:  # "password: x" / "pwd=x" is an assignment whatever x is
        return True
    has_digit = any(c.isdigit() for c in bare)
    has_symbol = any(not c.isalnum() for c in bare)
    mixed_case = any(c.isupper() for c in bare[1:]) and any(c.islower() for c in bare)
    return has_digit or has_symbol or mixed_case


def _looks_bare_secret(value: str) -> bool:
    """Decide whether the word right after "password" (no "is", no colon) is a password: digits or mixed case."""
    bare = value.strip("()[]{}<>.,;:!?\"'`*_~")
    if len(bare) < 4 or bare.lower() in _PLAIN_WORDS:
        return False
    mixed_case = any(c.isupper() for c in bare[1:]) and any(c.islower() for c in bare)
    inner_symbol = any(not c.isalnum() and c not in "'’-" for c in bare)  # "can't", "e-mail" are prose
    return any(c.isdigit() for c in bare) or mixed_case or inner_symbol


def _luhn(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def redact(text: str) -> Redaction:
    """Mask every secret found in ``text``.

    Args:
        text: Raw user text (already normalised or not).

    Returns:
        The masked text and the kinds of secret found, in order of discovery.
    """
    kinds: list[str] = []
    text = clean_unicode(text)  # storable and loggable; no zero-width character hiding "pass\u200bword"
    probe = skeleton(text)
    for kind, pattern in _TOKEN_PATTERNS if _TOKEN_HINT.search(probe) else ():
        spans = [match.span() for match in pattern.finditer(probe)]
        if spans:
            for start, end in reversed(spans):
                text = text[:start] + MASK + text[end:]
            probe = skeleton(text)
            kinds.append(kind)

    def _mask_group(kind: str, pattern: re.Pattern[str], text: str, hint: re.Pattern[str], *,
                    bare: bool = False) -> str:
        probe = skeleton(text)
        if not hint.search(probe):
            return text
        out, last = [], 0
        for match in pattern.finditer(probe):
            secret = text[match.start("secret"):match.end("secret")]
            if secret == MASK or secret.startswith(MASK):
                continue
            explicit = bool(re.search(r"[:=]\s*$", probe[match.start():match.start("secret")]))
            if kind == "password" and not (_looks_bare_secret(secret) if bare else _looks_secret(secret, explicit)):
                continue
            trailing = ""
            if kind == "password" and secret[:1] not in "\"'`":
                stripped = secret.rstrip(".,;)")
                trailing = secret[len(stripped):]
            out.append(text[last:match.start("secret")] + MASK + trailing)
            last = match.end("secret")
            if kind not in kinds:
                kinds.append(kind)
        out.append(text[last:])
        return "".join(out)

    text = _mask_group("password", _ASSIGNED, text, _PASSWORD_HINT)
    text = _mask_group("password", _BARE, text, _PASSWORD_HINT, bare=True)
    text = _mask_group("api_key", _API_ASSIGNED, text, _API_HINT)
    text = _mask_group("one_time_code", _OTP, text, _OTP_HINT)

    for match in reversed(list(_CARD.finditer(skeleton(text)))):
        digits = re.sub(r"\D", "", match.group(0))
        if 13 <= len(digits) <= 19 and _luhn(digits):
            text = text[:match.start()] + MASK + text[match.end():]
            if "card_number" not in kinds:
                kinds.append("card_number")
    return Redaction(text=text, kinds=tuple(kinds))


def mask_known(text: str, secrets: list[str] | tuple[str, ...]) -> str:
    """Mask exact occurrences of configured secrets (tokens, database password) and any pattern match."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, MASK)
    return redact(text).text

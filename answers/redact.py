"""Find and mask secrets that people paste into chat.

Runs on every message before anything is stored, logged or sent to a model:
passwords typed in plain words ("my password is Summer2024!", "hunter2xyz is
my password", "I typed 'Summer2024!' as my password", "login: jsmith /
Tr0ub4dor&3", "changed it from OldPass1 to NewPass2"), in English, German,
French and Spanish; API keys and tokens, private keys, one-time codes and card
numbers. Only the value is masked, so the prose around it stays readable, and
prose about passwords ("my password expired", 'it says "password is
incorrect"') is left alone: ``tests/redaction/corpus.jsonl`` holds both kinds.
The masked text is also valid Unicode without invisible characters (see
``answers.normalize.clean_unicode``). Why these patterns and not a detection
library: ``docs/redaction.md``.

Patterns are matched on a *skeleton* of the text in which look-alike letters
(Cyrillic and Greek homoglyphs, fullwidth forms) stand for their ASCII twins,
one character for one, so "pаssword" with a Cyrillic "а" is still caught; the
masks are applied to the original text at the same offsets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

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
_QUOTES = "\"'`“”‘’"
_CLOSING = {'"': '"', "'": "'", "`": "`", "“": "”", "‘": "’"}
_QUOTED = r"\"[^\"]{1,80}\"|'[^']{1,80}'|`[^`]{1,80}`|“[^”]{1,80}”|‘[^’]{1,80}’"
_VALUE = rf"(?P<secret>{_QUOTED}|\S{{1,80}})"
# "username/password: jsmith / X" names a pair: its first value is the user name (see _LOGIN), not the password.
_NOT_A_PAIR_LABEL = r"(?<!user/)(?<!username/)(?<!user / )(?<!username / )"
_ASSIGNED = re.compile(rf"(?i){_NOT_A_PAIR_LABEL}\b{_PASSWORD_WORDS}"
                       rf"(?:\s+(?:for|of|on)\s+(?:[\w.@-]+\s+){{0,3}}?)?\s*{_VERB}\s*{_VALUE}")
_BARE = re.compile(rf"(?i)\b{_BARE_PASSWORD_WORDS}\s+{_VALUE}")

# The value before the password word: "hunter2xyz is my password", "I typed 'Summer2024!' as my password",
# "Geheim!2024 ist mein Passwort", "j'ai tapé 'Soleil#2024' comme mot de passe". A password word that begins a
# compound ("my password manager", "the password field") names a thing, not the value before it.
_OWNER = r"(?:my|the|our|your|mein(?:e|es)?|dein\w*|das|unser\w*|mon|ma|le|notre|mi|tu|la|el|nuestra)"
_NOT_ABOUT_IT = (r"(?![\s-]*(?:manager|policy|policies|reset|hint|requirements?|rules?|generator|vault|app|tool|"
                 r"expiry|history|strength|length|change|problem|issue|question|complexity)\b)")
_NOT_A_PLACE = r"(?![\s-]*(?:field|box|prompt|screen|page|dialog|window|form|link|protected)\b)"
_NAMED = rf"(?:[\w-]+\s+){{0,2}}?{_BARE_PASSWORD_WORDS}\b{_NOT_ABOUT_IT}"
_VALUE_IS = re.compile(
    rf"(?i)(?<!\S){_VALUE}\s+(?:is|was|ist|war|est|était|es|era)\s+{_OWNER}\s+{_NAMED}{_NOT_A_PLACE}")
_VALUE_AS = re.compile(rf"(?i)(?<!\S){_VALUE}\s+(?:as|into|als|comme|como)\s+(?:{_OWNER}\s+)?{_NAMED}")

# A user name and its password after a login label: "login: jsmith / Tr0ub4dor&3", "Anmeldung: jschmidt:Geheim1!".
# The user name has a letter ("last login: 10:30" is a time) and the value does not start with "/" (a URL).
_LOGIN = re.compile(
    r"(?i)\b(?P<label>log-?in|log-?on|sign-?in|account|user(?:name)?(?:\s*/\s*pass(?:word)?)?|credentials?|creds"
    r"|anmeldung|zugangsdaten|benutzer(?:name)?|identifiants?|usuario|credenciales)\s*[:=]\s*"
    rf"(?=[^\s/:|]*[^\W\d_])[^\s/:|]{{1,64}}\s*[/:|]\s*(?!/){_VALUE}"
)
_LOGIN_SAYS_PASSWORD = re.compile(r"(?i)pass|cred|zugangsdaten")  # then the value is a password whatever it is

# A password changed from one value to another: both are masked. "changed it from OldPass1 to NewPass2", "changed
# it to NewPass2 from OldPass1", "von AltPass1 auf NeuPass2 geändert", "changé de X à Y", "cambié de X a Y".
_CHANGED = r"(?:chang\w*|reset|updat\w*|switch\w*|ge(?:ä|ae)ndert|(?:ä|ae)nder\w*|modifi\w*|cambi\w*)"
_OBJECT = r"(?P<object>(?:\s+[\w'’]+){0,3}?)"
_OLD = _VALUE
_NEW = rf"(?P<secret2>{_QUOTED}|\S{{1,80}})"
_FROM_TO = re.compile(
    rf"(?i)\b{_CHANGED}{_OBJECT}\s+(?:from|von|de|desde)\s+{_OLD}\s+(?:to|auf|zu|à|a|en|por)\s+{_NEW}")
_TO_FROM = re.compile(rf"(?i)\b{_CHANGED}{_OBJECT}\s+(?:to|auf|zu)\s+{_NEW}\s+(?:from|von)\s+{_OLD}")
_VON_AUF = re.compile(rf"(?i)\bvon\s+{_OLD}\s+(?:auf|zu|in)\s+{_NEW}\s+(?:ge(?:ä|ae)ndert|umgestellt)\b")
_PASSWORD_WORD = re.compile(rf"(?i)\b{_PASSWORD_WORDS}\b")
_NAME_NUMBER = re.compile(r"([^\W\d_]+)(\d+)")
_MEASURE = re.compile(r"(?i)^(?:\d+(?:[kmgt]?hz|[kmgt]i?b|[kmg]bps|px|dpi|%|p)|\d+x\d+)$")  # "5GHz", "1920x1080"

_API_ASSIGNED = re.compile(  # "aws_secret_access_key = ...": the key word may follow an underscore
    r"(?i)(?<![a-z0-9])(?:api[_ -]?key|secret|token|client[_ -]?secret|access[_ -]?key)\s*(?:[:=]|\bis\b)\s*"
    r"(?P<secret>\S{8,200})"
)
_OTP = re.compile(r"(?i)\b(?:mfa|otp|2fa|verification|authenticator|security|one[- ]time|sms)\s+code\s*(?:is|was|:|=)?\s*(?P<secret>\d{6,8})\b")
_CARD = re.compile(r"\b\d(?:[ -]?\d){12,18}\b")
# What each group's pattern cannot match without (a quick scan that skips the slower one).
_PASSWORD_HINT = re.compile(r"(?i)pass|pwd|pw|pin|contrase")
_LOGIN_HINT = re.compile(r"(?i)log-?[io]n|sign-?in|account|user|cred|anmeldung|zugangsdaten|benutzer|identifiant"
                         r"|usuario")
_CHANGED_HINT = re.compile(r"(?i)chang|reset|updat|switch|ndert|nder|modifi|cambi")
_API_HINT = re.compile(r"(?i)key|secret|token")
_OTP_HINT = re.compile(r"(?i)code")

_PLAIN_WORDS = frozenset(
    "expired expiring wrong incorrect correct not no the a my too reset changed locked working fine ok okay same "
    "invalid required needed asked rejected accepted different new old".split()
)

Span = tuple[int, int]


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


def _quoted(value: str) -> bool:
    """True for a value in a pair of quotes (one opening quote only is the start of a quoted message)."""
    return len(value) > 2 and _CLOSING.get(value[0]) == value[-1]


def _unquoted_core(value: str) -> str:
    """``value`` without the punctuation that ends a sentence or closes a quotation around it.

    'it says "password is incorrect"' ends its value with a closing quote: the quotation is the error message,
    and the word in it is prose.
    """
    return value.rstrip(".,;:!?)").rstrip(_QUOTES).rstrip(".,;:!?)")


def _looks_secret(value: str, explicit: bool) -> bool:
    """Decide whether the word after "password is" is a password or ordinary prose."""
    if not any(c.isalnum() for c in value):  # a stray quote or dash, not a value
        return False
    if _quoted(value):
        return True
    bare = value.rstrip(".,;)")
    if bare[-1:] in _QUOTES:  # closes a quotation opened before "password": the end of a quoted message
        bare = _unquoted_core(bare)
    if not bare or _unquoted_core(bare).lower() in _PLAIN_WORDS:
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


def _looks_changed_secret(value: str) -> bool:
    """Decide whether a value of "changed it from X to Y" is a password when nothing says so.

    Settings change too ("from 2.4GHz to 5GHz", "from 1920x1080 to 2560x1440", "from v1.2 to v1.3"): a measure,
    a resolution or a version number is not a password.
    """
    core = _unquoted_core(value)
    return (_quoted(value) or len(core) >= 6 and _looks_secret(value, explicit=False)
            and "." not in core and not _MEASURE.search(core))


def _a_version_bump(old: str, new: str) -> bool:
    """True for one name with another number ("Windows10" to "Windows11"): an upgrade, when no password is named."""
    before, after = _NAME_NUMBER.fullmatch(old.rstrip(".,;)")), _NAME_NUMBER.fullmatch(new.rstrip(".,;)"))
    return bool(before and after and before[1].lower() == after[1].lower())


def _value_span(text: str, match: re.Match[str], group: str) -> Span | None:
    """Where the value of ``group`` is, without the sentence's punctuation after it; None if it is masked already."""
    start, end = match.span(group)
    value = text[start:end]
    if value.startswith(MASK):
        return None
    if not _quoted(value):
        end = start + len(value.rstrip(".,;)"))
    return start, end


# Judges: given a match on the skeleton and the original text, the spans to mask (none when it is prose). The
# values are read from the original text, at the match's offsets.

def _value(text: str, match: re.Match[str], group: str = "secret") -> str:
    return text[match.start(group):match.end(group)]


def _spans_if(decided: bool, text: str, match: re.Match[str], *groups: str) -> list[Span]:
    if not decided:
        return []
    return [span for span in (_value_span(text, match, group) for group in groups) if span is not None]


def _assigned_spans(match: re.Match[str], text: str) -> list[Span]:
    explicit = bool(re.search(r"[:=]\s*$", match.string[match.start():match.start("secret")]))
    return _spans_if(_looks_secret(_value(text, match), explicit), text, match, "secret")


def _bare_spans(match: re.Match[str], text: str) -> list[Span]:
    return _spans_if(_looks_bare_secret(_value(text, match)), text, match, "secret")


def _named_spans(match: re.Match[str], text: str) -> list[Span]:
    return _spans_if(_looks_secret(_value(text, match), explicit=False), text, match, "secret")


def _login_spans(match: re.Match[str], text: str) -> list[Span]:
    explicit = bool(_LOGIN_SAYS_PASSWORD.search(match["label"]))
    return _spans_if(_looks_secret(_value(text, match), explicit), text, match, "secret")


def _changed_spans(match: re.Match[str], text: str) -> list[Span]:
    """Both values when the sentence names a password, or when both look like one (see _looks_changed_secret)."""
    names_password = "object" in match.re.groupindex and bool(_PASSWORD_WORD.search(match["object"]))
    values = (_value(text, match, "secret"), _value(text, match, "secret2"))
    if names_password:
        decided = all(_looks_secret(value, explicit=True) for value in values)
    else:
        decided = all(_looks_changed_secret(value) for value in values) and not _a_version_bump(*values)
    return _spans_if(decided, text, match, "secret", "secret2")


def _always_spans(match: re.Match[str], text: str) -> list[Span]:
    return _spans_if(True, text, match, "secret")


_Judge = Callable[[re.Match[str], str], list[Span]]
# (kind, pattern, hint, judge), applied in this order, each to the text the ones before have masked.
_PROSE_RULES: tuple[tuple[str, re.Pattern[str], re.Pattern[str], _Judge], ...] = (
    ("password", _ASSIGNED, _PASSWORD_HINT, _assigned_spans),
    ("password", _BARE, _PASSWORD_HINT, _bare_spans),
    ("password", _VALUE_IS, _PASSWORD_HINT, _named_spans),
    ("password", _VALUE_AS, _PASSWORD_HINT, _named_spans),
    ("password", _LOGIN, _LOGIN_HINT, _login_spans),
    ("password", _FROM_TO, _CHANGED_HINT, _changed_spans),
    ("password", _TO_FROM, _CHANGED_HINT, _changed_spans),
    ("password", _VON_AUF, _CHANGED_HINT, _changed_spans),
    ("api_key", _API_ASSIGNED, _API_HINT, _always_spans),
    ("one_time_code", _OTP, _OTP_HINT, _always_spans),
)


def _mask_spans(text: str, spans: list[Span]) -> str:
    """``text`` with each span replaced by the mask (spans in order, not overlapping)."""
    out, last = [], 0
    for start, end in spans:
        out.append(text[last:start] + MASK)
        last = end
    out.append(text[last:])
    return "".join(out)


def _apply_rule(text: str, pattern: re.Pattern[str], hint: re.Pattern[str], judge: _Judge) -> str:
    """``text`` with the values ``judge`` accepts among ``pattern``'s matches masked (matched on the skeleton)."""
    probe = skeleton(text)
    if not hint.search(probe):
        return text
    spans: list[Span] = []
    for match in pattern.finditer(probe):  # matches do not overlap, and come in order
        spans.extend(sorted(judge(match, text)))
    return _mask_spans(text, spans) if spans else text


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

    for kind, pattern, hint, judge in _PROSE_RULES:
        masked = _apply_rule(text, pattern, hint, judge)
        if masked != text and kind not in kinds:
            kinds.append(kind)
        text = masked

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

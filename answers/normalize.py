"""Turn Slack-formatted text into plain text the router and retriever understand.

Slack sends ``<@U123>`` for mentions, ``<https://x|label>`` for links,
``:emoji:`` codes, ``*bold*``/``_italic_``/``~strike~`` and HTML entities.
"""

from __future__ import annotations

import html
import re
import unicodedata

__all__ = ["normalize_slack_text", "MAX_INPUT_CHARS", "truncate", "clean_unicode", "expand_shorthand"]

MAX_INPUT_CHARS = 3000

_USER = re.compile(r"<@([UW][A-Z0-9]+)(?:\|([^>]+))?>")
_CHANNEL = re.compile(r"<#C[A-Z0-9]+(?:\|([^>]*))?>")
_SPECIAL = re.compile(r"<!(?:subteam\^[A-Z0-9]+|here|channel|everyone|date\^[^>]*)(?:\|([^>]*))?>")
_LINK = re.compile(r"<((?:https?|mailto):[^|>]+)(?:\|([^>]+))?>")
_EMOJI = re.compile(r":[a-z0-9_+\-']+:")
_FORMAT = re.compile(r"(?<!\w)[*_~]+(\S(?:.*?\S)?)[*_~]+(?!\w)")
_CODE = re.compile(r"`{1,3}([^`]*)`{1,3}")
_CONTROL = re.compile(r"[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u2028\u2029]")
# Invisible format characters (zero-width, soft hyphen, bidi controls, variation selectors, tag characters):
# removed, not spaced, so "pass\u200bword is ..." is still a password and "ig\u200bnore" still a word.
_INVISIBLE = re.compile(r"[\u00ad\u034f\u061c\u115f\u1160\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164"
                        r"\ufe00-\ufe0f\ufeff\uffa0\U000e0000-\U000e007f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")  # lone halves, as JSON "\ud83d" decodes: not encodable as UTF-8
_SPACE = re.compile(r"\s+")


def clean_unicode(text: str) -> str:
    """``text`` as valid Unicode without invisible characters: lone surrogates become U+FFFD.

    Slack delivers JSON, which can carry half an emoji (``"\\ud83d"``); such a string cannot be encoded as
    UTF-8, so it could be neither stored nor logged. Invisible characters could hide a password or an
    instruction from the pattern checks.
    """
    return _INVISIBLE.sub("", _SURROGATE.sub("\ufffd", text))


def normalize_slack_text(text: str) -> str:
    """Return ``text`` without Slack markup, control characters or extra spaces.

    Mentions of people become ``@name`` (or nothing), links keep their label or
    address, ``<!channel>``-style broadcasts are dropped so they can never be
    echoed back, emoji codes are removed.
    """
    text = unicodedata.normalize("NFKC", clean_unicode(text))
    text = _CONTROL.sub(" ", text)
    text = _USER.sub(lambda m: f"@{m.group(2)}" if m.group(2) else "", text)
    text = _CHANNEL.sub(lambda m: f"#{m.group(1)}" if m.group(1) else "", text)
    text = _SPECIAL.sub("", text)
    text = _LINK.sub(lambda m: m.group(2) or m.group(1).removeprefix("mailto:"), text)
    text = html.unescape(text)
    text = _EMOJI.sub(" ", text)
    text = _CODE.sub(r"\1", text)
    text = _FORMAT.sub(r"\1", text)
    text = text.replace("<", " ").replace(">", " ")
    return _SPACE.sub(" ", text).strip()


def truncate(text: str, limit: int = MAX_INPUT_CHARS) -> tuple[str, bool]:
    """Cut ``text`` to ``limit`` characters on a word boundary; say whether it was cut."""
    if len(text) <= limit:
        return text, False
    cut = text[:limit]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit * 0.8 else cut), True


# Chat shorthand spelt out for the sentence encoder, which learnt English from edited text: "pw expired and it wont
# accept my new one" is about a password. Only words that mean one thing; not "u" ("the U drive"), "hr" (the HR
# department) or "min" (minimum or minute), nor inside a name ("PW-100"). The router and the rules read the message
# as written.
_SHORTHAND = {
    "pw": "password", "pwd": "password", "pword": "password", "passwd": "password",
    "tmrw": "tomorrow", "tmr": "tomorrow", "tmrow": "tomorrow", "tomoz": "tomorrow", "yday": "yesterday",
    "msg": "message", "msgs": "messages", "msging": "messaging", "mins": "minutes",
    "appt": "appointment", "appts": "appointments", "acct": "account", "accts": "accounts", "dept": "department",
    "mgr": "manager", "req": "request", "reqs": "requests", "pic": "picture", "pics": "pictures",
    "pls": "please", "plz": "please", "ur": "your", "b4": "before", "bc": "because", "cuz": "because",
    "coz": "because", "w/": "with", "w/o": "without", "wfh": "work from home", "thx": "thanks",
    "sth": "something", "smth": "something", "ppl": "people",
    "doesnt": "doesn't", "dont": "don't", "cant": "can't", "isnt": "isn't", "didnt": "didn't", "wasnt": "wasn't",
    "hasnt": "hasn't", "havent": "haven't", "wouldnt": "wouldn't", "couldnt": "couldn't", "shouldnt": "shouldn't",
    "arent": "aren't", "werent": "weren't", "whats": "what's", "thats": "that's", "im": "I'm", "ive": "I've",
    "theyre": "they're", "youre": "you're", "wont": "won't", "hows": "how's", "wheres": "where's",
}
_SHORTHAND_WORD = re.compile(
    r"(?i)(?<![\w/'-])(" + "|".join(sorted(map(re.escape, _SHORTHAND), key=len, reverse=True)) + r")(?![\w/'-])"
)


def expand_shorthand(text: str) -> str:
    """``text`` with chat shorthand written out ("pw" -> "password", "doesnt" -> "doesn't"), for retrieval."""
    return _SHORTHAND_WORD.sub(lambda m: _SHORTHAND[m.group(1).lower()], text)

"""Turn Slack-formatted text into plain text the router and retriever understand.

Slack sends ``<@U123>`` for mentions, ``<https://x|label>`` for links,
``:emoji:`` codes, ``*bold*``/``_italic_``/``~strike~`` and HTML entities.
"""

from __future__ import annotations

import html
import re
import unicodedata

__all__ = ["normalize_slack_text", "MAX_INPUT_CHARS", "truncate"]

MAX_INPUT_CHARS = 3000

_USER = re.compile(r"<@([UW][A-Z0-9]+)(?:\|([^>]+))?>")
_CHANNEL = re.compile(r"<#C[A-Z0-9]+(?:\|([^>]*))?>")
_SPECIAL = re.compile(r"<!(?:subteam\^[A-Z0-9]+|here|channel|everyone|date\^[^>]*)(?:\|([^>]*))?>")
_LINK = re.compile(r"<((?:https?|mailto):[^|>]+)(?:\|([^>]+))?>")
_EMOJI = re.compile(r":[a-z0-9_+\-']+:")
_FORMAT = re.compile(r"(?<!\w)[*_~]+(\S(?:.*?\S)?)[*_~]+(?!\w)")
_CODE = re.compile(r"`{1,3}([^`]*)`{1,3}")
_CONTROL = re.compile(r"[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f\u200b-\u200f\u2028-\u202e\ufeff]")
_SPACE = re.compile(r"\s+")


def normalize_slack_text(text: str) -> str:
    """Return ``text`` without Slack markup, control characters or extra spaces.

    Mentions of people become ``@name`` (or nothing), links keep their label or
    address, ``<!channel>``-style broadcasts are dropped so they can never be
    echoed back, emoji codes are removed.
    """
    text = unicodedata.normalize("NFKC", text.encode("utf-8", "replace").decode("utf-8"))
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

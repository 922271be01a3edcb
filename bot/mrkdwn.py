"""Turn the engine's Markdown-style replies into Slack mrkdwn, within Slack's limits."""

from __future__ import annotations

import re

__all__ = ["to_mrkdwn", "split_text", "SECTION_LIMIT", "escape", "clip"]

SECTION_LIMIT = 3000  # characters in one section block's text
QUOTE_LIMIT = 3000  # characters of someone's message quoted in a relay (Slack refuses texts over 40,000)
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_BROADCAST = re.compile(r"<!(channel|here|everyone)(\|[^>]*)?>|@(channel|here|everyone)\b"
                        r"|<!subteam\^\w+(?:\|@?([^>]*))?>")


def escape(text: str) -> str:
    """Escape user-provided text so Slack renders it literally (no mentions, no links)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int = QUOTE_LIMIT) -> str:
    """``text`` cut to ``limit`` characters, saying how long it was, for someone's message quoted in another."""
    return text if len(text) <= limit else f"{text[:limit]}… (cut, {len(text):,} characters in all)"


def to_mrkdwn(text: str) -> str:
    """``**bold**`` to ``*bold*``; broadcast and user-group mentions are defused so the bot never pings a crowd."""
    text = _BOLD.sub(r"*\1*", text)
    return _BROADCAST.sub(lambda m: (m.group(1) or m.group(3) or m.group(4) or "the team"), text)


def split_text(text: str, limit: int = SECTION_LIMIT) -> list[str]:
    """Split ``text`` into pieces of at most ``limit`` characters, at paragraph, line or word boundaries."""
    pieces: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        window = rest[:limit]
        cut = max(window.rfind("\n\n"), window.rfind("\n"))
        if cut < limit // 2:
            cut = window.rfind(" ")
        if cut < limit // 2:
            cut = limit
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest or not pieces:
        pieces.append(rest)
    return pieces

"""Spot which platform a question is about ("I'm on a Mac", "my iPhone")."""

from __future__ import annotations

import re

__all__ = ["detect_platform"]

_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("ios", re.compile(r"\b(iphone|ipad|ios|ipados)\b", re.I)),
    ("android", re.compile(r"\b(android|pixel|galaxy|samsung|oneplus|xiaomi|motorola)\b", re.I)),
    ("macos", re.compile(r"\b(mac|macbook|imac|macos|os ?x|sonoma|sequoia|ventura|monterey|finder|keychain)\b", re.I)),
    ("windows", re.compile(r"\b(windows|win ?1[01]|pc|surface|ctrl\+alt\+del|thinkpad|dell|lenovo)\b", re.I)),
    ("linux", re.compile(r"\b(linux|ubuntu|fedora|debian)\b", re.I)),
)


def detect_platform(text: str) -> str | None:
    """The first platform named in ``text``, or None."""
    for platform, pattern in _PATTERNS:
        if pattern.search(text):
            return platform
    return None

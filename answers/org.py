"""The organisation profile: the facts about *your* helpdesk used in answers.

Knowledge-base articles carry placeholders such as ``{portal_url}``; they are
filled from this profile so that an IT team edits settings, not articles.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from functools import lru_cache

__all__ = ["OrgProfile", "PLACEHOLDERS", "fill_placeholders"]

_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


@dataclass(frozen=True, slots=True)
class OrgProfile:
    """Organisation specifics quoted in answers."""

    helpdesk_name: str = "the IT Helpdesk"
    portal_url: str = "https://selfservice.example.com"
    helpdesk_phone: str = "+1 555 0100"
    helpdesk_email: str = "helpdesk@example.com"
    hr_portal_url: str = "https://hr.example.com"
    password_min_length: int = 14
    wifi_ssid: str = "Corp-WiFi"
    guest_wifi_ssid: str = "Corp-Guest"
    vpn_address: str = "vpn.example.com"
    software_catalog: str = "Company Portal"
    phishing_report_email: str = "phishing@example.com"

    def values(self) -> dict[str, str]:
        """The profile as placeholder name to text."""
        return dict(_values(self))


@lru_cache(maxsize=16)
def _values(org: OrgProfile) -> tuple[tuple[str, str], ...]:
    """The profile's fields as text, computed once per profile (every answer fills placeholders)."""
    return tuple((field.name, str(getattr(org, field.name))) for field in fields(org))


PLACEHOLDERS: frozenset[str] = frozenset(OrgProfile().values())


def fill_placeholders(text: str, org: OrgProfile) -> str:
    """Replace every ``{name}`` known to the profile; leave anything else untouched.

    Args:
        text: Article or template text.
        org: The organisation profile.

    Returns:
        The text with placeholders filled in.
    """
    if "{" not in text:
        return text
    values = dict(_values(org))
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)

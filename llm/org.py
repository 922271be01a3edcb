"""The organisation profile: the facts about *your* helpdesk used in answers.

Knowledge-base articles carry placeholders such as ``{portal_url}``; they are
filled from this profile so that an IT team edits settings, not articles.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

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
        return {key: str(value) for key, value in asdict(self).items()}


PLACEHOLDERS: frozenset[str] = frozenset(OrgProfile().values())


def fill_placeholders(text: str, org: OrgProfile) -> str:
    """Replace every ``{name}`` known to the profile; leave anything else untouched.

    Args:
        text: Article or template text.
        org: The organisation profile.

    Returns:
        The text with placeholders filled in.
    """
    values = org.values()
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)

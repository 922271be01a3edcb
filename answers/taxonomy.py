"""The fixed intent taxonomy and the actions the engine can take.

Every interface (Slack, console chat, ``itbot ask``) and the evaluation use
these labels, so they live in one place.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["IT_INTENTS", "OTHER_INTENTS", "INTENTS", "Action", "default_action", "is_it_intent", "topic_label"]

IT_INTENTS: tuple[str, ...] = (
    "password_reset",
    "account_lockout",
    "mfa",
    "wifi",
    "vpn",
    "email",
    "phishing",
    "printer",
    "software_install",
    "software_issue",
    "slow_computer",
    "hardware",
    "os_update",
    "file_access",
    "mobile_device",
    "meetings_av",
    "access_request",
    "browser",
)
OTHER_INTENTS: tuple[str, ...] = ("greeting", "vague", "out_of_scope", "human_request")
INTENTS: tuple[str, ...] = IT_INTENTS + OTHER_INTENTS

INTENT_LABELS: dict[str, str] = {
    "password_reset": "Password reset",
    "account_lockout": "Locked account",
    "mfa": "MFA / authenticator",
    "wifi": "Wi-Fi",
    "vpn": "VPN",
    "email": "Email & calendar",
    "phishing": "Phishing & scams",
    "printer": "Printers",
    "software_install": "Install software",
    "software_issue": "App problems",
    "slow_computer": "Slow computer",
    "hardware": "Hardware",
    "os_update": "System updates",
    "file_access": "Files & shared drives",
    "mobile_device": "Work phone",
    "meetings_av": "Meetings, camera & mic",
    "access_request": "Access requests",
    "browser": "Web browser",
    "greeting": "Greeting",
    "vague": "Unclear request",
    "out_of_scope": "Not IT",
    "human_request": "Talk to a human",
}


def topic_label(topic: str) -> str:
    """What people see for a topic: the built-in label, or an organisation's own topic as written."""
    if topic in INTENT_LABELS:
        return INTENT_LABELS[topic]
    return topic[:1].upper() + topic[1:] if topic else "Other"


class Action(StrEnum):
    """What the engine does with a question."""

    ANSWER = "answer"
    CLARIFY = "clarify"
    REJECT = "reject"
    ESCALATE = "escalate"


def is_it_intent(intent: str) -> bool:
    """True for the IT support intents the knowledge base covers."""
    return intent in IT_INTENTS


def default_action(intent: str) -> Action:
    """The action an intent leads to when nothing else (urgency, doubt) applies."""
    if intent in IT_INTENTS:
        return Action.ANSWER
    if intent == "out_of_scope":
        return Action.REJECT
    if intent == "human_request":
        return Action.ESCALATE
    return Action.CLARIFY

"""The suggested prompts of the Messages tab: the topics people ask about most, as questions. Pure.

Slack shows at most four, each a ``title`` (the button) and the ``message`` sent when it is pressed.
"""

from __future__ import annotations

from collections.abc import Sequence

from answers.taxonomy import OTHER_INTENTS, topic_label

__all__ = ["MAX_PROMPTS", "NOT_TOPICS", "DEFAULT_TOPICS", "QUESTIONS", "suggested_prompts"]

MAX_PROMPTS = 4  # Slack's limit for assistant.threads.setSuggestedPrompts
NOT_TOPICS = OTHER_INTENTS  # greetings, unclear and non-IT messages, "get me a human"
DEFAULT_TOPICS = ("password_reset", "vpn", "mfa", "wifi")  # until enough questions were asked
QUESTIONS = {
    "password_reset": "I forgot my password",
    "account_lockout": "My account is locked",
    "mfa": "How do I set up MFA on a new phone?",
    "wifi": "I can't connect to the office Wi-Fi",
    "vpn": "My VPN won't connect",
    "email": "Outlook is not syncing my email",
    "phishing": "I got a suspicious email, what should I do?",
    "printer": "The printer says it's offline",
    "software_install": "How do I install new software?",
    "software_issue": "An app keeps crashing",
    "slow_computer": "My computer is very slow",
    "hardware": "My laptop screen is flickering",
    "os_update": "How do I install system updates?",
    "file_access": "I can't open a file on the shared drive",
    "mobile_device": "How do I set up work email on my phone?",
    "meetings_av": "My camera doesn't work in meetings",
    "access_request": "I need access to a system",
    "browser": "My web browser keeps crashing",
}


def suggested_prompts(most_asked: Sequence[str], *, limit: int = MAX_PROMPTS) -> list[dict[str, str]]:
    """Up to ``limit`` prompts: the most asked topics first, then the defaults, each topic once.

    Args:
        most_asked: Topics (intents), most asked first; non-topics are skipped.
        limit: At most :data:`MAX_PROMPTS`.

    Returns:
        ``[{"title": ..., "message": ...}]`` as ``assistant.threads.setSuggestedPrompts`` takes them.
    """
    topics: list[str] = []
    for topic in (*most_asked, *DEFAULT_TOPICS):
        if topic and topic not in NOT_TOPICS and topic not in topics:
            topics.append(topic)
    label = topic_label
    return [{"title": label(t)[:75], "message": QUESTIONS.get(t, f"I need help with {label(t).lower()}")}
            for t in topics[:min(limit, MAX_PROMPTS)]]

"""The fixed sets of values some columns take, as string enums.

Plain strings equal to a value are accepted wherever these are
(``source="dm"`` works as well as ``ConversationSource.DM``), and a loaded
value compares equal to its string.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["ConversationSource", "ConversationState", "Role", "EscalationStatus", "Urgency", "FeedbackKind"]


class ConversationSource(StrEnum):
    DM = "dm"
    SLASH = "slash"
    MENTION = "mention"
    CONSOLE = "console"
    WEB = "web"  # the web chat (web/): its conversation keys start with "web:"


class ConversationState(StrEnum):
    OPEN = "open"
    HANDED_TO_HUMAN = "handed_to_human"  # an agent claimed it: the bot stops answering
    CLOSED = "closed"


class Role(StrEnum):
    USER = "user"
    ASSISTANT = "assistant"
    AGENT = "agent"  # a human helpdesk agent, relayed into the thread


class EscalationStatus(StrEnum):
    OPEN = "open"
    CLAIMED = "claimed"
    RESOLVED = "resolved"
    CANCELLED = "cancelled"


class Urgency(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    CRITICAL = "critical"


class FeedbackKind(StrEnum):
    SOLVED = "solved"
    HELPFUL = "helpful"
    NOT_HELPFUL = "not_helpful"

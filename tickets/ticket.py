"""What a ticket system is sent and what it answers, and the one interface every integration has."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["Ticket", "TicketRef", "TicketSink"]


@dataclass(frozen=True, slots=True)
class Ticket:
    """An escalation as a ticket system receives it; every text is stored, that is redacted, text."""

    escalation_id: int
    idempotency_key: str  # the same for every attempt at this escalation: a retry never opens a second ticket
    subject: str  # "[itbot] Escalation #12: my vpn refuses my password"
    transcript: str  # the conversation, one "User: ..." / "Bot: ..." line per turn, then the details
    urgency: str  # low | normal | high | critical
    requester: str  # a Slack user id, "web:..." or "sso:<user>"


@dataclass(frozen=True, slots=True)
class TicketRef:
    """The ticket as its system knows it: an id people can search for, and a link when the system gives one."""

    id: str
    url: str | None = None


class TicketSink(Protocol):
    """Opens tickets in one ticket system."""

    name: str  # "email", "webhook", "jira"... for logs

    def open(self, ticket: Ticket) -> TicketRef:
        """Open ``ticket`` (or find the one an earlier attempt with its key opened) and return its reference.

        Raises:
            TicketRetry: The system is unavailable now; try again later.
            TicketRejected: The system refused the ticket for good.
        """
        ...

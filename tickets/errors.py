"""The two ways a ticket system can say no.

    TicketError
     ├── TicketRetry      try again later: 5xx, 408, 429, a timeout, a refused connection, SMTP 4xx
     └── TicketRejected   never try again: 4xx (bad credentials, a missing field), SMTP 5xx

The message is short and safe to show agents ("HTTP 503", "SMTP 550"): never a response body or a secret.
"""

from __future__ import annotations

__all__ = ["TicketError", "TicketRetry", "TicketRejected"]


class TicketError(Exception):
    """A ticket could not be opened; ``str(error)`` is a short reason agents may see."""


class TicketRetry(TicketError):
    """The ticket system is unavailable for now: the same ticket is sent again later, with the same key."""


class TicketRejected(TicketError):
    """The ticket system refused this ticket for good: sending it again would fail the same way."""

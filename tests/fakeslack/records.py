"""What the fake saw: Web API calls, pushed envelopes, acks, WebSocket connections.

Plain frozen dataclasses; times are ``time.monotonic()`` seconds so tests can
subtract them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Ack", "Call", "Connection", "Push", "SLACK_ACK_DEADLINE_S"]

# Slack retries an envelope that is not acknowledged within three seconds.
SLACK_ACK_DEADLINE_S = 3.0


@dataclass(frozen=True)
class Call:
    """One HTTP request the app made to the fake.

    ``method`` is the Web API method name (``"chat.postMessage"``), or
    ``"upload"`` for a file body sent to an upload URL, or ``"response_url"``
    for a POST to a ``response_url``. ``params`` merges the query string and the
    body, form or JSON, with JSON-valued fields (``blocks``, ``view``,
    ``files``...) decoded, so tests read them the same whichever encoding the
    client used.
    """

    method: str
    params: dict[str, Any]
    token: str | None
    status: int
    response: Any
    at: float

    @property
    def ok(self) -> bool:
        """True when Slack would have reported success."""
        return self.status == 200 and isinstance(self.response, dict) and bool(self.response.get("ok"))

    @property
    def error(self) -> str | None:
        """The ``error`` field of the response, if any."""
        return self.response.get("error") if isinstance(self.response, dict) else None


@dataclass(frozen=True)
class Push:
    """An envelope the fake sent to the app over the WebSocket."""

    envelope_id: str
    envelope: dict[str, Any]
    connection_id: int
    at: float


@dataclass(frozen=True)
class Ack:
    """An acknowledgement the app sent back; ``payload`` is what ``ack(...)`` carried."""

    envelope_id: str
    payload: dict[str, Any] | None
    connection_id: int
    at: float
    latency: float | None  # seconds from push to ack; None for an envelope the fake never pushed

    @property
    def late(self) -> bool:
        """True when Slack would already have given up on this ack and retried."""
        return self.latency is not None and self.latency > SLACK_ACK_DEADLINE_S


@dataclass(frozen=True)
class Connection:
    """A WebSocket connection the app opened; ``closed_at`` is None while it is open."""

    id: int
    ticket: str
    opened_at: float
    closed_at: float | None = None

    @property
    def is_open(self) -> bool:
        """True until either side has closed the connection."""
        return self.closed_at is None

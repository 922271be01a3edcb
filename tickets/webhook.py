"""Tickets by signed JSON webhook: one POST per attempt, with the same idempotency key on every attempt.

Every request carries::

    Content-Type: application/json
    Idempotency-Key: itbot-escalation-12-1764950000   (the same on every retry of one escalation)
    X-Itbot-Timestamp: 1764950123                     (seconds since the epoch, when it was sent)
    X-Itbot-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" with the shared secret>

The receiver checks the signature (:func:`verify`) and keeps the key of each ticket it opened, answering a
repeated key with the ticket it already has. 2xx: opened (the reference is read from the JSON answer);
408, 429, 5xx, a timeout or a refused connection: try again later; any other 4xx: refused for good.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Callable

from pydantic import SecretStr

from tickets.errors import TicketRejected, TicketRetry
from tickets.ticket import Ticket, TicketRef

log = logging.getLogger(__name__)

__all__ = ["WebhookSink", "generic_payload", "field_reference", "sign", "verify", "RETRY_STATUSES"]

RETRY_STATUSES = frozenset({408, 425, 429})  # besides every 5xx
SIGNATURE_HEADER, TIMESTAMP_HEADER, KEY_HEADER = "X-Itbot-Signature", "X-Itbot-Timestamp", "Idempotency-Key"


def sign(secret: str, body: bytes, timestamp: str) -> str:
    """The signature header's value: ``sha256=`` and the hex HMAC-SHA256 of ``<timestamp>.<body>``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, body: bytes, timestamp: str, signature: str, *, now: float | None = None,
           tolerance_s: float = 300) -> bool:
    """True when ``signature`` is the secret's signature of the body and the timestamp is recent (for receivers)."""
    try:
        fresh = abs((time.time() if now is None else now) - int(timestamp)) <= tolerance_s
    except ValueError:
        return False
    return fresh and hmac.compare_digest(sign(secret, body, timestamp), signature)


def generic_payload(ticket: Ticket) -> dict[str, Any]:
    """The plain webhook's JSON body: every field of the ticket."""
    return {"event": "itbot.escalation", "idempotency_key": ticket.idempotency_key,
            "escalation_id": ticket.escalation_id, "subject": ticket.subject, "transcript": ticket.transcript,
            "urgency": ticket.urgency, "requester": ticket.requester}


def _dig(document: Any, path: str) -> Any:
    for part in path.split("."):
        document = document.get(part) if isinstance(document, dict) else None
    return document


def field_reference(id_field: str = "id", url_field: str | None = "url") -> Callable[[Any], TicketRef]:
    """A reader of the ticket's reference from a JSON answer, by dotted paths (``result.number``)."""
    def read(answer: Any) -> TicketRef:
        ticket_id = _dig(answer, id_field)
        if ticket_id in (None, ""):
            raise TicketRejected(f"the answer has no ticket id at '{id_field}'")
        url = _dig(answer, url_field) if url_field else None
        return TicketRef(id=str(ticket_id), url=str(url) if url else None)

    return read


@dataclass
class WebhookSink:
    """POST each ticket as JSON to ``url``; ``payload`` shapes the body, ``reference`` reads the answer."""

    url: str
    secret: SecretStr | None = field(default=None, repr=False)
    payload: Callable[[Ticket], dict[str, Any]] = generic_payload
    reference: Callable[[Any], TicketRef] = field(default_factory=field_reference)
    headers: dict[str, str] = field(default_factory=dict, repr=False)  # e.g. Authorization for a preset
    timeout_s: float = 10.0
    name: str = "webhook"
    clock: Callable[[], float] = time.time
    # A ticket an earlier attempt may have opened, found by its idempotency key before a new one is created (the
    # request of that search, and how to read its answer: None when there is none); for systems with no
    # idempotency key of their own, so that a retry after a lost answer does not open a second ticket.
    lookup: Callable[[Ticket], urllib.request.Request] | None = field(default=None, repr=False)
    found: Callable[[Any], TicketRef | None] | None = field(default=None, repr=False)

    def request(self, ticket: Ticket) -> urllib.request.Request:
        """The HTTP request of one attempt (signed now)."""
        body = json.dumps(self.payload(ticket), ensure_ascii=False).encode()
        timestamp = str(int(self.clock()))
        headers = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": "itbot",
                   KEY_HEADER: ticket.idempotency_key, TIMESTAMP_HEADER: timestamp, **self.headers}
        if self.secret is not None:
            headers[SIGNATURE_HEADER] = sign(self.secret.get_secret_value(), body, timestamp)
        return urllib.request.Request(self.url, data=body, headers=headers, method="POST")

    def open(self, ticket: Ticket) -> TicketRef:
        if self.lookup is not None and self.found is not None:
            try:
                existing = self.found(self._call(self.lookup(ticket)))
            except TicketRejected as error:  # no read access, an older API: create as before, not fail for good
                log.warning("the %s look-up before creating a ticket was refused (%s); creating it", self.name, error)
                existing = None
            if existing is not None:
                return existing
        return self.reference(self._call(self.request(ticket)))

    def _call(self, request: urllib.request.Request) -> Any:
        """Send ``request``; its JSON answer, or TicketRetry / TicketRejected as the failure deserves."""
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            error.close()
            status = error.code
            if status >= 500 or status in RETRY_STATUSES:
                raise TicketRetry(f"HTTP {status}") from None
            raise TicketRejected(f"HTTP {status}") from None
        except (TimeoutError, socket.timeout):
            raise TicketRetry("timed out") from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise TicketRetry(f"unreachable ({type(reason).__name__})") from None
        try:
            return json.loads(raw) if raw.strip() else {}
        except ValueError:
            raise TicketRejected("the answer is not JSON") from None

"""Durable delivery: every escalation's ticket is sent until its ticket system has it, across restarts.

The escalation is stored with ticket status ``pending`` in the transaction that opens it; :func:`deliver_due`
(run right after the escalation is posted, and every few seconds by the scheduler, so also at start-up) sends
each due ticket outside any transaction and records what happened:

    pending ──2xx / accepted──> created            (ticket id and link stored)
       │  └──retryable failure──> pending, next attempt after a growing delay (Backoff)
       └────refused for good────> failed           (agents see why; not retried)

A process that dies mid-send leaves a lease that expires; the ticket is then sent again with the same
idempotency key, so the ticket system answers with the ticket it already opened.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Callable

from storage import repository as repo
from storage.escalations import TICKET_CREATED, TICKET_FAILED, TICKET_PENDING
from storage.models import Escalation
from storage.types import utcnow
from tickets.errors import TicketError, TicketRejected
from tickets.ticket import Ticket, TicketRef, TicketSink

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

__all__ = ["Backoff", "Delivered", "TicketState", "idempotency_key", "ticket_for", "deliver_due", "TRANSCRIPT_TURNS"]

log = logging.getLogger(__name__)
TRANSCRIPT_TURNS = 100
LEASE = timedelta(minutes=5)  # longer than any one attempt (each has a 10 s timeout by default)
_WHO = {"user": "User", "assistant": "Bot", "agent": "Agent"}


@dataclass(frozen=True, slots=True)
class Backoff:
    """How long to wait before attempt n+1 after n failed ones: ``first_s``, doubling, at most ``most_s``."""

    first_s: float = 30.0
    most_s: float = 3600.0

    def delay(self, failed: int) -> timedelta:
        return timedelta(seconds=min(self.most_s, self.first_s * 2 ** max(0, failed - 1)))


@dataclass(frozen=True, slots=True)
class TicketState:
    """An escalation's ticket as the helpdesk post and the Home tab show it."""

    status: str  # pending | created | failed
    id: str | None = None
    url: str | None = None
    attempts: int = 0
    next_attempt_at: datetime | None = None
    error: str | None = None

    @classmethod
    def of(cls, escalation: Any) -> "TicketState | None":
        """From a loaded ``storage.models.Escalation``; None when it has no ticket (opened before tickets)."""
        if escalation.ticket_status is None:
            return None
        return cls(status=str(escalation.ticket_status), id=escalation.ticket_id, url=escalation.ticket_url,
                   attempts=escalation.ticket_attempts or 0, next_attempt_at=escalation.ticket_next_attempt_at,
                   error=escalation.ticket_error)


@dataclass(frozen=True, slots=True)
class Delivered:
    """The outcome of one attempt at an escalation's ticket."""

    escalation_id: int
    state: TicketState
    ref: TicketRef | None = None  # set when this attempt opened the ticket


def idempotency_key(escalation: Escalation) -> str:
    """The escalation's key in every ticket system: its number and when it was opened (a new database reuses
    numbers, never both)."""
    return f"itbot-escalation-{escalation.id}-{int(escalation.created_at.timestamp())}"


def _one_line(text: str, limit: int = 80) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[:limit - 1] + "…"


def ticket_for(session: "Session", escalation: Escalation) -> Ticket:
    """The ticket of ``escalation``: its stored (redacted) conversation as the transcript, then the details."""
    turns = repo.recent_turns(session, escalation.conversation_id, limit=TRANSCRIPT_TURNS)
    lines = [f"{_WHO.get(str(turn.role), str(turn.role))}: {turn.text}" for turn in turns]
    if escalation.details:
        lines += ["", f"Details from the requester: {escalation.details}"]
    first = next((turn.text for turn in turns if turn.role == "user"), None)
    about = _one_line(first) if first else "help requested"
    return Ticket(escalation_id=escalation.id, idempotency_key=idempotency_key(escalation),
                  subject=f"[itbot] Escalation #{escalation.id}: {about}",
                  transcript="\n".join(lines) or escalation.summary, urgency=str(escalation.urgency),
                  requester=escalation.conversation.user_id)


def deliver_due(sessions: "sessionmaker[Session]", sink: TicketSink, *, backoff: Backoff = Backoff(),
                now: Callable[[], datetime] = utcnow, only: int | None = None, limit: int = 20) -> list[Delivered]:
    """Send every due ticket (or only escalation ``only``'s) once; what happened to each, in order.

    Never raises for a ticket system's failure: it is recorded and retried later.
    """
    if only is not None:  # just opened: the lease checks it is still due
        due = [only]
    else:
        with sessions.begin() as session:
            due = [e.id for e in repo.due_tickets(session, now=now(), limit=limit)]
    return [outcome for escalation_id in due
            if (outcome := _deliver_one(sessions, sink, escalation_id, backoff=backoff, now=now)) is not None]


def _deliver_one(sessions: "sessionmaker[Session]", sink: TicketSink, escalation_id: int, *, backoff: Backoff,
                 now: Callable[[], datetime]) -> Delivered | None:
    started = now()
    with sessions.begin() as session:
        if not repo.lease_ticket(session, escalation_id, now=started, until=started + LEASE):
            return None  # another process is sending it, or it was sent meanwhile
        escalation = session.get(Escalation, escalation_id)
        ticket, failed_before = ticket_for(session, escalation), escalation.ticket_attempts
    ref = error = None
    try:
        ref = sink.open(ticket)
    except TicketError as problem:
        error = problem
    except Exception:  # a bug in a sink must not stop the other tickets: logged, and retried like an outage
        log.exception("ticket %s: the %s integration failed unexpectedly", escalation_id, sink.name)
        error = TicketError("unexpected error, see the bot's log")
    with sessions.begin() as session:
        if ref is not None:
            repo.record_ticket(session, escalation_id, ticket_id=ref.id, url=ref.url)
            log.info("ticket %s opened in %s as %s", escalation_id, sink.name, ref.id)
        else:
            assert error is not None
            retry_at = None if isinstance(error, TicketRejected) else now() + backoff.delay(failed_before + 1)
            repo.record_ticket_failure(session, escalation_id, error=str(error), retry_at=retry_at)
            log.warning("ticket %s not opened in %s (attempt %d): %s; %s", escalation_id, sink.name,
                        failed_before + 1, error, f"next attempt at {retry_at:%H:%M:%S} UTC" if retry_at
                        else "not retried")
        state = TicketState.of(session.get(Escalation, escalation_id))
    assert state is not None and state.status in (TICKET_CREATED, TICKET_PENDING, TICKET_FAILED)
    return Delivered(escalation_id=escalation_id, state=state, ref=ref)

"""The web visitor's request with the helpdesk: where it stands (status, ticket, rating), and rating it.

The Slack app shows the same things in the employee's thread and in "My requests"; a web page has neither, so it
reads them here when it polls. Rating goes through ``storage``'s ``rate_escalation``, as Slack's rating buttons do.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from sqlalchemy import select

from storage import repository as repo
from storage.models import Escalation

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

__all__ = ["RequestState", "Rated", "latest_request", "rate_request"]

_TICKET_CREATED = "created"


@dataclass(frozen=True, slots=True)
class RequestState:
    """A conversation's latest escalation as its visitor may see it."""

    escalation_id: int
    status: str  # open | claimed | resolved | cancelled
    ticket_id: str | None  # set once the ticket system opened the ticket
    ticket_url: str | None
    satisfaction: int | None  # the visitor's 1-5 rating, once given

    @classmethod
    def of(cls, escalation: Escalation) -> "RequestState":
        created = escalation.ticket_status == _TICKET_CREATED and bool(escalation.ticket_id)
        return cls(escalation_id=escalation.id, status=str(escalation.status),
                   ticket_id=escalation.ticket_id if created else None,
                   ticket_url=escalation.ticket_url if created else None, satisfaction=escalation.satisfaction)


class Rated(Enum):
    """What became of a rating."""

    STORED = "stored"
    NOT_FOUND = "not_found"  # no such escalation in this conversation
    NOT_RESOLVED = "not_resolved"  # open, claimed or cancelled: only a resolved request is rated


def latest_request(sessions: "sessionmaker[Session]", conversation_id: int) -> RequestState | None:
    """The conversation's latest escalation, or None when it never reached the helpdesk."""
    with sessions.begin() as session:
        escalation = session.scalars(select(Escalation).where(Escalation.conversation_id == conversation_id)
                                     .order_by(Escalation.id.desc()).limit(1)).one_or_none()
        return RequestState.of(escalation) if escalation is not None else None


def rate_request(sessions: "sessionmaker[Session]", *, conversation_id: int, escalation_id: int, user_id: str,
                 rating: int) -> Rated:
    """Store ``user_id``'s 1-5 satisfaction with a resolved escalation of their conversation (a later one replaces it).

    The escalation id comes from the client: one of another conversation is refused as not found.
    """
    with sessions.begin() as session:
        escalation = session.get(Escalation, escalation_id)
        if escalation is None or escalation.conversation_id != conversation_id:
            return Rated.NOT_FOUND
        if not repo.rate_escalation(session, escalation_id, user_id=user_id, rating=rating):
            return Rated.NOT_RESOLVED
        return Rated.STORED

"""Escalations: a conversation handed over to the helpdesk team.

Each state change is one conditional UPDATE (``... WHERE status = 'open'``),
so when two agents press "Claim" at once, or one agent double-clicks, the
database picks exactly one winner and the others learn they lost.

    open ──claim──> claimed ──resolve──> resolved ──rate──> (satisfaction 1-5)
      │                │
      └──resolve───────┼──> resolved
      └──cancel────────┴──> cancelled

The conversation follows: claimed -> ``handed_to_human`` (the bot stops
answering), resolved -> ``closed``, cancelled -> ``open`` again.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Update, func, or_, select, update
from sqlalchemy.orm import Session

from answers.redact import redact
from storage.conversations import append_message
from storage.idempotency import insert_once
from storage.models import Base, Conversation, ConversationState, Escalation, EscalationStatus, Urgency
from storage.types import utcnow

__all__ = ["open_escalation", "set_escalation_message", "claim_escalation", "resolve_escalation",
           "cancel_escalation", "rate_escalation", "active_escalation", "find_escalation_by_message",
           "list_open_escalations_for_user", "list_escalations_for_user", "list_open_queue", "add_escalation_detail",
           "due_tickets", "lease_ticket", "record_ticket", "record_ticket_failure"]

ACTIVE = (EscalationStatus.OPEN, EscalationStatus.CLAIMED)


def open_escalation(session: Session, *, conversation_id: int, summary: str, urgency: Urgency | str = Urgency.NORMAL,
                    details: str | None = None) -> tuple[Escalation, bool]:
    """Open an escalation for a conversation, or return the one already open.

    A conversation has at most one open or claimed escalation (a unique
    index), so a double-submitted modal does not page the team twice.

    Args:
        session: The caller's session.
        conversation_id: The conversation to hand over.
        summary: The transcript summary shown to agents; redacted before storing.
        urgency: ``low``, ``normal``, ``high`` or ``critical``.
        details: What the user added in the modal; redacted before storing.

    Returns:
        The escalation, and True if this call created it (post it to the
        escalation channel only then).
    """
    escalation = Escalation(
        conversation_id=conversation_id, summary=redact(summary).text, urgency=Urgency(urgency),
        details=redact(details).text if details else None, status=EscalationStatus.OPEN,
    )
    if insert_once(session, escalation):
        return escalation, True
    existing = active_escalation(session, conversation_id)
    if existing is not None:
        return existing, False
    # Not a duplicate after all: a foreign key failed (flushing again raises it for the caller),
    # or the escalation in the way was closed meanwhile (then this insert succeeds).
    session.add(escalation)
    session.flush()
    return escalation, True


def set_escalation_message(session: Session, escalation_id: int, *, channel_id: str, message_ts: str) -> None:
    """Remember where the escalation was posted, to update that message later."""
    _update_one(session, Escalation, escalation_id, update(Escalation).where(Escalation.id == escalation_id)
                .values(channel_id=channel_id, channel_message_ts=message_ts))


def _update_one(session: Session, model: type[Base], ident: object, statement: Update) -> bool:
    """Run a conditional UPDATE of one row; refresh the row if this session has it loaded."""
    # rowcount (not RETURNING) decides, as it is reliable on every driver; the
    # in-memory copy is refreshed rather than guessed from the statement.
    won = session.execute(statement.execution_options(synchronize_session=False)).rowcount == 1
    loaded = session.identity_map.get(session.identity_key(model, ident))
    if won and loaded is not None:
        session.refresh(loaded)
    return won


def _transition(session: Session, escalation_id: int, allowed: tuple[EscalationStatus, ...],
                state: ConversationState, **values: object) -> bool:
    statement = (update(Escalation).where(Escalation.id == escalation_id, Escalation.status.in_(allowed))
                 .values(**values))
    if not _update_one(session, Escalation, escalation_id, statement):
        return False
    conversation_id = session.scalars(select(Escalation.conversation_id).where(Escalation.id == escalation_id)).one()
    _update_one(session, Conversation, conversation_id,
                update(Conversation).where(Conversation.id == conversation_id).values(state=state, updated_at=utcnow()))
    return True


def claim_escalation(session: Session, escalation_id: int, *, agent_id: str, at: datetime | None = None) -> bool:
    """Claim an open escalation for ``agent_id``; the conversation is handed to the human.

    Returns:
        True if this caller won; False if it was already claimed, resolved or cancelled (or does not exist).
    """
    return _transition(session, escalation_id, (EscalationStatus.OPEN,), ConversationState.HANDED_TO_HUMAN,
                       status=EscalationStatus.CLAIMED, claimed_by=agent_id, claimed_at=at or utcnow())


def resolve_escalation(session: Session, escalation_id: int, *, agent_id: str, at: datetime | None = None) -> bool:
    """Resolve an open or claimed escalation; an unclaimed one counts as claimed by the resolver now.

    Returns:
        True if this caller resolved it; False if it was resolved or cancelled already.
    """
    now = at or utcnow()
    return _transition(
        session, escalation_id, ACTIVE, ConversationState.CLOSED, status=EscalationStatus.RESOLVED,
        resolved_by=agent_id, resolved_at=now,
        claimed_by=func.coalesce(Escalation.claimed_by, agent_id), claimed_at=func.coalesce(Escalation.claimed_at, now),
    )


def cancel_escalation(session: Session, escalation_id: int) -> bool:
    """Withdraw an open or claimed escalation (the user sorted it out); the bot answers again.

    Returns:
        True if this call cancelled it.
    """
    return _transition(session, escalation_id, ACTIVE, ConversationState.OPEN, status=EscalationStatus.CANCELLED)


def rate_escalation(session: Session, escalation_id: int, *, user_id: str, rating: int) -> bool:
    """Store the requester's 1-5 satisfaction with a resolved escalation (a later rating replaces it).

    Args:
        session: The caller's session.
        escalation_id: The escalation.
        user_id: Who is rating; only the user whose conversation it is may.
        rating: 1 (poor) to 5 (great).

    Returns:
        True if stored; False if not resolved or ``user_id`` is not the requester.

    Raises:
        ValueError: ``rating`` is outside 1-5.
    """
    if not 1 <= rating <= 5:
        raise ValueError(f"satisfaction must be 1 to 5, not {rating}")
    mine = select(Conversation.id).where(Conversation.user_id == user_id)
    statement = (update(Escalation)
                 .where(Escalation.id == escalation_id, Escalation.status == EscalationStatus.RESOLVED,
                        Escalation.conversation_id.in_(mine))
                 .values(satisfaction=rating))
    return _update_one(session, Escalation, escalation_id, statement)


def active_escalation(session: Session, conversation_id: int) -> Escalation | None:
    """The conversation's open or claimed escalation, if any (to relay the user's messages to it)."""
    return session.scalars(
        select(Escalation).where(Escalation.conversation_id == conversation_id, Escalation.status.in_(ACTIVE))
    ).one_or_none()


def find_escalation_by_message(session: Session, *, channel_id: str, message_ts: str) -> Escalation | None:
    """The escalation posted as ``message_ts`` in the escalation channel (to relay an agent's thread reply)."""
    return session.scalars(
        select(Escalation).where(Escalation.channel_id == channel_id, Escalation.channel_message_ts == message_ts)
    ).first()


def list_open_escalations_for_user(session: Session, user_id: str) -> list[Escalation]:
    """The user's open and claimed escalations, newest first (``/itsupport status``)."""
    return list(session.scalars(
        select(Escalation).join(Escalation.conversation)
        .where(Conversation.user_id == user_id, Escalation.status.in_(ACTIVE))
        .order_by(Escalation.created_at.desc(), Escalation.id.desc())
    ))


def list_escalations_for_user(session: Session, user_id: str, *, limit: int = 10) -> list[Escalation]:
    """The user's latest escalations in any status, newest first (the Home tab's "My requests")."""
    return list(session.scalars(
        select(Escalation).join(Escalation.conversation).where(Conversation.user_id == user_id)
        .order_by(Escalation.created_at.desc(), Escalation.id.desc()).limit(limit)
    ))


def list_open_queue(session: Session, *, limit: int = 15) -> list[Escalation]:
    """The escalations nobody has claimed yet, oldest first (the agents' queue on the Home tab)."""
    return list(session.scalars(
        select(Escalation).where(Escalation.status == EscalationStatus.OPEN)
        .order_by(Escalation.created_at, Escalation.id).limit(limit)
    ))


def add_escalation_detail(session: Session, escalation_id: int, *, user_id: str,
                          text: str) -> tuple[Escalation, str] | None:
    """Store what the requester adds to their open or claimed escalation, as a turn of its conversation.

    Args:
        session: The caller's session.
        escalation_id: The escalation.
        user_id: Who adds it; only the requester may.
        text: What they wrote; redacted before storing.

    Returns:
        The escalation and the stored (redacted) text; None when it is not ``user_id``'s or no longer active.
    """
    escalation = session.get(Escalation, escalation_id)
    if escalation is None or escalation.conversation.user_id != user_id or escalation.status not in ACTIVE:
        return None
    stored = append_message(session, conversation_id=escalation.conversation_id, role="user", text=text)
    return escalation, stored.text


# Tickets ------------------------------------------------------------------------------------------------------
# An escalation is opened with ticket_status "pending"; whoever delivers tickets leases a due one (pushes its
# next attempt time forward with a conditional UPDATE, so two processes never send it at once), sends it, and
# records the outcome. The ticket's idempotency key keeps a retry from opening a second ticket.

TICKET_PENDING, TICKET_CREATED, TICKET_FAILED = "pending", "created", "failed"


def due_tickets(session: Session, *, now: datetime, limit: int = 20) -> list[Escalation]:
    """Escalations whose ticket is due: pending and never tried (while the escalation is active), or retried.

    An escalation closed before its first attempt gets no ticket (tickets were switched on after it, or it was
    sorted out at once); one tried already is retried until its ticket exists, open or not.
    """
    return list(session.scalars(
        select(Escalation).where(
            Escalation.ticket_status == TICKET_PENDING,
            or_(Escalation.ticket_next_attempt_at.is_(None), Escalation.ticket_next_attempt_at <= now),
            or_(Escalation.status.in_(ACTIVE), Escalation.ticket_attempts > 0))
        .order_by(Escalation.id).limit(limit)))


def lease_ticket(session: Session, escalation_id: int, *, now: datetime, until: datetime) -> bool:
    """Take the due ticket of ``escalation_id`` until ``until``; False when another process has it or it is done."""
    statement = (update(Escalation).where(
        Escalation.id == escalation_id, Escalation.ticket_status == TICKET_PENDING,
        or_(Escalation.ticket_next_attempt_at.is_(None), Escalation.ticket_next_attempt_at <= now))
        .values(ticket_next_attempt_at=until))
    return _update_one(session, Escalation, escalation_id, statement)


def record_ticket(session: Session, escalation_id: int, *, ticket_id: str, url: str | None) -> bool:
    """Store the ticket the ticket system opened; False when it was stored already."""
    statement = (update(Escalation).where(Escalation.id == escalation_id, Escalation.ticket_status != TICKET_CREATED)
                 .values(ticket_status=TICKET_CREATED, ticket_id=ticket_id[:200], ticket_url=url,
                         ticket_attempts=Escalation.ticket_attempts + 1, ticket_next_attempt_at=None,
                         ticket_error=None))
    return _update_one(session, Escalation, escalation_id, statement)


def record_ticket_failure(session: Session, escalation_id: int, *, error: str, retry_at: datetime | None) -> bool:
    """Count a failed attempt: retried at ``retry_at``, or failed for good when it is None."""
    values: dict[str, object] = {"ticket_attempts": Escalation.ticket_attempts + 1, "ticket_error": error[:200],
                                 "ticket_next_attempt_at": retry_at}
    if retry_at is None:
        values["ticket_status"] = TICKET_FAILED
    statement = (update(Escalation).where(Escalation.id == escalation_id, Escalation.ticket_status == TICKET_PENDING)
                 .values(**values))
    return _update_one(session, Escalation, escalation_id, statement)

"""Retention and access: purge old conversations, export one user's data.

Purging deletes a conversation with everything that hangs off it (messages,
their feedback, escalations). Knowledge-base drafts outlive their escalation
(the link is cleared): they are articles for everyone, not a user's data.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from storage.models import (Base, Conversation, Escalation, Feedback, GreetedUser, JobLock, Message, PendingQuestion,
                            ProcessedEvent)
from storage.types import utcnow

__all__ = ["PurgeCounts", "purge_older_than", "export_user"]

_CHUNK = 500  # ids per IN (...) list, well under every driver's parameter limit


@dataclass(frozen=True, slots=True)
class PurgeCounts:
    """How many rows a purge deleted, per table."""

    conversations: int = 0
    messages: int = 0
    feedback: int = 0
    escalations: int = 0
    processed_events: int = 0
    job_locks: int = 0
    pending_questions: int = 0
    greeted_users: int = 0  # a user greeted before the cutoff is greeted again on their next visit

    def as_dict(self) -> dict[str, int]:
        """The counts by table name, for logs and ``itbot db purge`` output."""
        return asdict(self)


def _chunks(ids: Sequence[int]) -> Iterator[Sequence[int]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start:start + _CHUNK]


def purge_older_than(session: Session, cutoff: datetime) -> PurgeCounts:
    """Delete conversations last active before ``cutoff``, with their messages, feedback and escalations.

    Processed event ids, job locks, stored questions and greetings older than ``cutoff`` go too. Rows are
    deleted children first so each count is exact (the foreign keys also
    cascade, for anything that arrives meanwhile).

    Args:
        session: The caller's session; commit to make the purge stick.
        cutoff: Aware datetime, e.g. ``utcnow() - timedelta(days=settings.retention_days)``.

    Returns:
        Rows deleted per table.
    """
    counts = dict.fromkeys(PurgeCounts.__dataclass_fields__, 0)
    old = session.scalars(select(Conversation.id).where(Conversation.updated_at < cutoff)).all()
    no_sync = {"synchronize_session": False}
    for ids in _chunks(old):
        messages = select(Message.id).where(Message.conversation_id.in_(ids))
        for table, statement in (
            ("feedback", delete(Feedback).where(Feedback.message_id.in_(messages))),
            ("messages", delete(Message).where(Message.conversation_id.in_(ids))),
            ("escalations", delete(Escalation).where(Escalation.conversation_id.in_(ids))),
            ("conversations", delete(Conversation).where(Conversation.id.in_(ids))),
        ):
            counts[table] += session.execute(statement, execution_options=no_sync).rowcount
    for table, statement in (
        ("processed_events", delete(ProcessedEvent).where(ProcessedEvent.received_at < cutoff)),
        ("job_locks", delete(JobLock).where(JobLock.acquired_at < cutoff)),
        ("pending_questions", delete(PendingQuestion).where(PendingQuestion.received_at < cutoff)),
        ("greeted_users", delete(GreetedUser).where(GreetedUser.greeted_at < cutoff)),
    ):
        counts[table] = session.execute(statement, execution_options=no_sync).rowcount
    return PurgeCounts(**counts)


def _plain(row: Base, *, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """A row's columns as JSON-ready values (ISO 8601 timestamps, enum values as strings)."""
    out: dict[str, Any] = {}
    for column in row.__table__.columns:
        if column.key in skip:
            continue
        value = getattr(row, column.key)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, Enum):
            value = value.value
        out[column.key] = value
    return out


def export_user(session: Session, user_id: str) -> dict[str, Any]:
    """Everything stored about one user, as a JSON-serialisable dict (``itbot db export-user U123``).

    Includes the user's conversations with their messages, escalations and
    the feedback on those messages, the feedback the user gave anywhere, and
    the escalations the user handled as a helpdesk agent.

    Args:
        session: The caller's session.
        user_id: The Slack user id.

    Returns:
        ``{"user_id", "exported_at", "conversations": [...], "questions_received": [...], "feedback_given": [...],
        "escalations_handled": [...], "greeted": [...]}`` (questions received: the durable intake's rows, kept a day
        after answering; greeted: when the Messages tab greeted the user).
    """
    conversations = []
    for conversation in session.scalars(
        select(Conversation).where(Conversation.user_id == user_id).order_by(Conversation.created_at, Conversation.id)
    ):
        messages = session.scalars(
            select(Message).where(Message.conversation_id == conversation.id).order_by(Message.id)).all()
        feedback = session.scalars(
            select(Feedback).join(Message, Feedback.message_id == Message.id)
            .where(Message.conversation_id == conversation.id).order_by(Feedback.id)).all()
        escalations = session.scalars(
            select(Escalation).where(Escalation.conversation_id == conversation.id).order_by(Escalation.id)).all()
        conversations.append({
            **_plain(conversation),
            "messages": [_plain(message) for message in messages],
            "feedback": [_plain(item) for item in feedback],
            "escalations": [_plain(item) for item in escalations],
        })
    given = session.scalars(select(Feedback).where(Feedback.user_id == user_id).order_by(Feedback.id)).all()
    handled = session.scalars(
        select(Escalation).where(or_(Escalation.claimed_by == user_id, Escalation.resolved_by == user_id))
        .order_by(Escalation.id)).all()
    questions = session.scalars(select(PendingQuestion).where(PendingQuestion.user_id == user_id)
                                .order_by(PendingQuestion.id)).all()
    greeted = session.scalars(select(GreetedUser).where(GreetedUser.user_id == user_id)).all()
    return {
        "user_id": user_id,
        "exported_at": utcnow().isoformat(),
        "conversations": conversations,
        "questions_received": [_plain(item, skip=("holder",)) for item in questions],
        "feedback_given": [_plain(item) for item in given],
        "escalations_handled": [_plain(item, skip=("summary", "details")) for item in handled],
        "greeted": [_plain(item, skip=("id",)) for item in greeted],
    }

"""Who got the one-time greeting in the app's Messages tab, and what people ask about most."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from storage.idempotency import insert_new
from storage.models import GreetedUser, Message, Role
from storage.types import utcnow

__all__ = ["mark_greeted", "forget_greeting", "most_asked_intents"]


def mark_greeted(session: Session, *, team_id: str, user_id: str) -> bool:
    """Record that ``user_id`` was greeted; True only the first time (two racing opens greet once).

    Args:
        session: The caller's session.
        team_id: Slack workspace id.
        user_id: The user who opened the Messages tab.

    Returns:
        True when this call recorded it, False when the user was greeted before.
    """
    return insert_new(session, GreetedUser, team_id=team_id, user_id=user_id, greeted_at=utcnow()) is not None


def forget_greeting(session: Session, *, team_id: str, user_id: str) -> None:
    """Undo :func:`mark_greeted` when the greeting could not be posted, so that the next visit greets."""
    session.execute(delete(GreetedUser).where(GreetedUser.team_id == team_id, GreetedUser.user_id == user_id))


def most_asked_intents(session: Session, *, limit: int = 4, since: datetime | None = None,
                       exclude: Collection[str] = ()) -> list[tuple[str, int]]:
    """The intents answered most often (most first, ties by name), counted on assistant turns.

    Args:
        session: The caller's session.
        limit: How many to return.
        since: Count only answers from then on (all time when None).
        exclude: Intents that are not topics (greetings, out of scope...).
    """
    query = (select(Message.intent, func.count().label("n"))
             .where(Message.role == Role.ASSISTANT, Message.intent.is_not(None)))
    if since is not None:
        query = query.where(Message.created_at >= since)
    if exclude:
        query = query.where(Message.intent.not_in(list(exclude)))
    query = query.group_by(Message.intent).order_by(func.count().desc(), Message.intent).limit(limit)
    return [(intent, n) for intent, n in session.execute(query).all()]

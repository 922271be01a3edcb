"""Feedback buttons pressed on answers ("Solved", "Not helpful")."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.idempotency import insert_once
from storage.models import Feedback, FeedbackKind
from storage.types import utcnow

__all__ = ["record_feedback", "UP_KINDS", "DOWN_KINDS"]

UP_KINDS = (FeedbackKind.SOLVED, FeedbackKind.HELPFUL)
DOWN_KINDS = (FeedbackKind.NOT_HELPFUL,)


def record_feedback(session: Session, *, message_id: int, user_id: str, kind: FeedbackKind | str) -> Feedback:
    """Record a user's verdict on an answer; pressing again (or the other button) replaces it.

    One row per (message, user), so a double click is not counted twice.

    Args:
        session: The caller's session.
        message_id: The assistant message the buttons were under.
        user_id: Who pressed.
        kind: ``solved``, ``helpful`` or ``not_helpful``.

    Returns:
        The stored feedback.
    """
    kind = FeedbackKind(kind)
    query = select(Feedback).where(Feedback.message_id == message_id, Feedback.user_id == user_id)
    feedback = session.scalars(query).one_or_none()
    if feedback is None:
        feedback = Feedback(message_id=message_id, user_id=user_id, kind=kind)
        if insert_once(session, feedback):
            return feedback
        feedback = session.scalars(query).one_or_none()
        if feedback is None:  # not a duplicate: the message does not exist, and flushing again says so
            feedback = Feedback(message_id=message_id, user_id=user_id, kind=kind)
            session.add(feedback)
            session.flush()
            return feedback
    feedback.kind = kind
    feedback.created_at = utcnow()
    session.flush()
    return feedback

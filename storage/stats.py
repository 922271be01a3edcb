"""The operations figures of the daily digest, over a time window (the last 24 hours by default)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, func, select
from sqlalchemy.orm import Session

from storage.feedback import DOWN_KINDS, UP_KINDS
from storage.models import Conversation, Escalation, Feedback, FeedbackKind, Message, Role
from storage.types import utcnow

__all__ = ["OperationsStats", "operations_stats"]


@dataclass(frozen=True, slots=True)
class OperationsStats:
    """What happened between ``since`` and ``until``."""

    since: datetime
    until: datetime
    conversations: int = 0
    answered_without_human: int = 0
    escalations_opened: int = 0
    escalations_claimed: int = 0
    escalations_resolved: int = 0
    median_time_to_claim_s: float | None = None
    satisfaction_average: float | None = None
    satisfaction_count: int = 0
    feedback_up: int = 0
    feedback_down: int = 0
    top_intents: list[tuple[str, int]] = field(default_factory=list)
    not_helpful_questions: list[str] = field(default_factory=list)
    kb_gaps: int = 0  # IT questions no knowledge-base article covered
    kb_gap_questions: list[str] = field(default_factory=list)
    model_answers: int = 0  # answers a language model wrote and the bot showed
    model_withheld: int = 0  # model answers the grounding guard withheld (the curated steps were shown)

    @property
    def deflection_rate(self) -> float | None:
        """Share of conversations answered without a human, or None when there were none."""
        return self.answered_without_human / self.conversations if self.conversations else None


def operations_stats(session: Session, *, since: datetime | None = None, until: datetime | None = None,
                     top: int = 5, questions: int = 5) -> OperationsStats:
    """Compute the digest's operations figures.

    Conversations count when started in the window; "answered without a
    human" are those that got a bot reply and were never escalated.
    Escalations count by the event's own time (opened, claimed, resolved);
    time to claim and satisfaction are over escalations claimed, respectively
    resolved, in the window. Intents are counted on assistant messages.

    Args:
        session: The caller's session.
        since: Window start (aware); ``until`` minus 24 hours by default.
        until: Window end (aware, exclusive); now by default.
        top: How many top intents to list.
        questions: How many "Not helpful" questions to list (newest first, already redacted).

    Returns:
        The figures.
    """
    until = until or utcnow()
    since = since or until - timedelta(hours=24)

    def window(column):  # noqa: ANN001, ANN202 - a mapped column
        return and_(column >= since, column < until)

    def count(model, *where) -> int:  # noqa: ANN001
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0

    replied = exists().where(Message.conversation_id == Conversation.id, Message.role == Role.ASSISTANT)
    escalated = exists().where(Escalation.conversation_id == Conversation.id)
    claims = session.execute(select(Escalation.created_at, Escalation.claimed_at)
                             .where(window(Escalation.claimed_at))).all()
    ratings = session.scalars(select(Escalation.satisfaction)
                              .where(window(Escalation.resolved_at), Escalation.satisfaction.is_not(None))).all()
    intents = session.execute(
        select(Message.intent, func.count().label("n"))
        .where(window(Message.created_at), Message.role == Role.ASSISTANT, Message.intent.is_not(None))
        .group_by(Message.intent).order_by(func.count().desc(), Message.intent).limit(top)
    ).all()
    return OperationsStats(
        since=since,
        until=until,
        conversations=count(Conversation, window(Conversation.created_at)),
        answered_without_human=count(Conversation, window(Conversation.created_at), replied,
                                     ~escalated),
        escalations_opened=count(Escalation, window(Escalation.created_at)),
        escalations_claimed=len(claims),
        escalations_resolved=count(Escalation, window(Escalation.resolved_at)),
        median_time_to_claim_s=statistics.median((claimed - created).total_seconds() for created, claimed in claims)
        if claims else None,
        satisfaction_average=statistics.fmean(ratings) if ratings else None,
        satisfaction_count=len(ratings),
        feedback_up=count(Feedback, window(Feedback.created_at), Feedback.kind.in_(UP_KINDS)),
        feedback_down=count(Feedback, window(Feedback.created_at), Feedback.kind.in_(DOWN_KINDS)),
        top_intents=[(intent, n) for intent, n in intents],
        not_helpful_questions=_not_helpful_questions(session, window(Feedback.created_at), questions),
        kb_gaps=count(Message, window(Message.created_at), Message.role == Role.ASSISTANT,
                      Message.reason == KB_GAP),
        kb_gap_questions=_kb_gap_questions(session, window(Message.created_at), questions),
        model_answers=count(Message, window(Message.created_at), Message.role == Role.ASSISTANT,
                            Message.model.is_not(None), Message.model != "kb"),
        model_withheld=count(Message, window(Message.created_at), Message.role == Role.ASSISTANT,
                             Message.reason == UNGROUNDED),
    )


KB_GAP = "not covered"
UNGROUNDED = "ungrounded"  # answers.engine.UNGROUNDED: a model answer withheld by the grounding guard


def _kb_gap_questions(session: Session, in_window, limit: int) -> list[str]:  # noqa: ANN001
    """The (redacted) questions behind the newest knowledge-base gaps: candidates for new articles."""
    gaps = session.execute(
        select(Message.conversation_id, Message.id)
        .where(in_window, Message.role == Role.ASSISTANT, Message.reason == KB_GAP)
        .order_by(Message.id.desc()).limit(limit)
    ).all()
    found = []
    for conversation_id, message_id in gaps:
        text = session.scalar(select(Message.text).where(Message.conversation_id == conversation_id,
                                                         Message.role == Role.USER, Message.id < message_id)
                              .order_by(Message.id.desc()).limit(1))
        if text:
            found.append(text)
    return found


def _not_helpful_questions(session: Session, in_window, limit: int) -> list[str]:  # noqa: ANN001
    """The user question before each answer marked "Not helpful", newest first, without repeats."""
    rated = session.execute(
        select(Message.conversation_id, Message.id).join(Feedback, Feedback.message_id == Message.id)
        .where(in_window, Feedback.kind == FeedbackKind.NOT_HELPFUL)
        .order_by(Feedback.created_at.desc(), Feedback.id.desc())
    ).all()
    found: list[str] = []
    for conversation_id, message_id in rated:
        question = session.scalar(
            select(Message.text).where(Message.conversation_id == conversation_id, Message.id < message_id,
                                       Message.role == Role.USER).order_by(Message.id.desc()).limit(1))
        if question and question not in found:
            found.append(question)
            if len(found) == limit:
                break
    return found

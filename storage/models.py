"""The tables, as typed SQLAlchemy models.

Only redacted text is stored (the repository functions redact on the way in).
Every timestamp is an aware UTC datetime; choices are strings with a CHECK
constraint, so the same schema runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, Float, ForeignKey, Index, Integer, MetaData, String, Text
from sqlalchemy import UniqueConstraint, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from storage.choices import ConversationSource, ConversationState, EscalationStatus, FeedbackKind, Role, Urgency
from storage.types import UtcDateTime, choice, utcnow

__all__ = [
    "Base", "ConversationSource", "ConversationState", "Role", "EscalationStatus", "Urgency", "FeedbackKind",
    "Conversation", "Message", "Escalation", "Feedback", "ProcessedEvent", "EvaluationRun", "KbDraft", "JobLock",
    "PendingQuestion", "GreetedUser", "RateLimitWindow", "KnownIssue",
]

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
ACTIVE_ESCALATION = "status IN ('open', 'claimed')"


class Base(DeclarativeBase):
    """Declarative base: constraints get predictable names, so migrations can refer to them."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UtcDateTime(), dict[str, Any]: JSON(), list[str]: JSON()}


class Conversation(Base):
    """One Slack thread (or console session) with one user."""

    __tablename__ = "conversations"
    __table_args__ = (UniqueConstraint("team_id", "channel_id", "thread_ts"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    channel_id: Mapped[str] = mapped_column(String(32))
    thread_ts: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(32), index=True)
    source: Mapped[ConversationSource] = mapped_column(choice(ConversationSource, "source"))
    state: Mapped[ConversationState] = mapped_column(choice(ConversationState, "state"),
                                                     default=ConversationState.OPEN)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class Message(Base):
    """One turn; the engine's decision (intent, action...) is recorded on assistant turns."""

    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    role: Mapped[Role] = mapped_column(choice(Role, "role"))
    text: Mapped[str] = mapped_column(Text)
    intent: Mapped[str | None] = mapped_column(String(64))
    confidence: Mapped[float | None] = mapped_column(Float)
    action: Mapped[str | None] = mapped_column(String(32))
    sources: Mapped[list[str]] = mapped_column(default=list)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    model: Mapped[str | None] = mapped_column(Text)
    adapter: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    # why the engine chose the action ("not covered" marks a knowledge-base gap); added by migration 0002
    reason: Mapped[str | None] = mapped_column(String(32))
    # the Slack ts of the message a user turn came from, to react on it; added by migration 0004
    slack_ts: Mapped[str | None] = mapped_column(String(32))


class Escalation(Base):
    """A hand-over to the helpdesk team, worked in the escalation channel."""

    __tablename__ = "escalations"
    __table_args__ = (
        CheckConstraint("satisfaction BETWEEN 1 AND 5", name="satisfaction_1_to_5"),
        # At most one open or claimed escalation per conversation, even when two submissions race.
        Index("uq_escalations_active_conversation", "conversation_id", unique=True,
              sqlite_where=text(ACTIVE_ESCALATION), postgresql_where=text(ACTIVE_ESCALATION)),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    status: Mapped[EscalationStatus] = mapped_column(choice(EscalationStatus, "status"),
                                                     default=EscalationStatus.OPEN, index=True)
    urgency: Mapped[Urgency] = mapped_column(choice(Urgency, "urgency"), default=Urgency.NORMAL)
    summary: Mapped[str] = mapped_column(Text)
    details: Mapped[str | None] = mapped_column(Text)
    channel_id: Mapped[str | None] = mapped_column(String(32))
    channel_message_ts: Mapped[str | None] = mapped_column(String(32))
    claimed_by: Mapped[str | None] = mapped_column(String(32))
    claimed_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(32))
    resolved_at: Mapped[datetime | None]
    satisfaction: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    # The ticket in the helpdesk's ticket system (tickets/), added by migration 0006. ``ticket_status`` is
    # pending (to send, or to send again at ``ticket_next_attempt_at``), created or failed (refused for good);
    # None for escalations opened before tickets existed. ``ticket_error`` is a short reason ("HTTP 503").
    ticket_status: Mapped[str | None] = mapped_column(String(16), default="pending", index=True)
    ticket_id: Mapped[str | None] = mapped_column(String(200))
    ticket_url: Mapped[str | None] = mapped_column(Text)
    ticket_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    ticket_next_attempt_at: Mapped[datetime | None]
    ticket_error: Mapped[str | None] = mapped_column(String(200))

    conversation: Mapped[Conversation] = relationship(lazy="joined", innerjoin=True)


class Feedback(Base):
    """A button press on an answer; one per user and message (the latest press wins)."""

    __tablename__ = "feedback"
    __table_args__ = (UniqueConstraint("message_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(String(32))
    kind: Mapped[FeedbackKind] = mapped_column(choice(FeedbackKind, "kind"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class ProcessedEvent(Base):
    """A Slack event id already handled, so a redelivery is dropped."""

    __tablename__ = "processed_events"

    event_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class PendingQuestion(Base):
    """A question taken from Slack, stored before Slack is told it arrived, until it is answered.

    Slack never redelivers an event it saw acknowledged: a question held only in memory is lost when the
    process dies. ``holder`` is the process responsible for it (the one that received it, or took it over
    from a dead one), ``started_at`` when that process began answering it; ``finished_at`` and ``outcome`` say
    how it ended (answered, expired, failed...). Finished rows are kept a day so a redelivery is recognised.
    A question from the "Ask IT about this" shortcut is stored before its DM exists: ``quote`` holds the post
    that opens its DM thread, with empty ``channel_id``/``reply_channel`` and ``thread_ts`` until it is posted.
    """

    __tablename__ = "pending_questions"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str | None] = mapped_column(String(128), unique=True)  # Slack's; None for commands, buttons
    team_id: Mapped[str] = mapped_column(String(32))
    channel_id: Mapped[str] = mapped_column(String(32))
    thread_ts: Mapped[str] = mapped_column(String(200))  # the conversation key (see bot.conversation)
    user_id: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)  # redacted
    topic: Mapped[str | None] = mapped_column(String(64))  # a topic the user picked from buttons
    reply_channel: Mapped[str] = mapped_column(String(32))
    reply_thread_ts: Mapped[str | None] = mapped_column(String(32))
    ephemeral: Mapped[bool] = mapped_column(Boolean, default=False)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    holder: Mapped[str] = mapped_column(String(200))
    held_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    finished_at: Mapped[datetime | None] = mapped_column(index=True)
    outcome: Mapped[str | None] = mapped_column(String(32))
    message_ts: Mapped[str | None] = mapped_column(String(32))  # the Slack message that asked; migration 0004
    # Migration 0008: the message an answer began streaming into (chat.startStream takes no metadata to find it
    # by), and a message shortcut's DM quote while it is still to be posted (its thread is the reply thread).
    streamed_ts: Mapped[str | None] = mapped_column(String(32))
    quote: Mapped[str | None] = mapped_column(Text)  # redacted, like text


class GreetedUser(Base):
    """A user who got the one-time greeting in the app's Messages tab."""

    __tablename__ = "greeted_users"
    __table_args__ = (UniqueConstraint("team_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(32))
    greeted_at: Mapped[datetime] = mapped_column(default=utcnow)


class EvaluationRun(Base):
    """One evaluation of the answer engine on the held-out split."""

    __tablename__ = "evaluation_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    started_at: Mapped[datetime] = mapped_column(index=True)
    finished_at: Mapped[datetime]
    model: Mapped[str] = mapped_column(Text)
    adapter: Mapped[str | None] = mapped_column(Text)
    mode: Mapped[str] = mapped_column(String(16))
    metrics: Mapped[dict[str, Any]]
    n: Mapped[int] = mapped_column(Integer)
    duration_s: Mapped[float] = mapped_column(Float)


class KbDraft(Base):
    """An agent's answer saved as a knowledge-base article to review; outlives its escalation."""

    __tablename__ = "kb_drafts"

    id: Mapped[int] = mapped_column(primary_key=True)
    escalation_id: Mapped[int | None] = mapped_column(ForeignKey("escalations.id", ondelete="SET NULL"),
                                                      index=True)
    title: Mapped[str] = mapped_column(String(200))
    intent: Mapped[str | None] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    exported: Mapped[bool] = mapped_column(Boolean, default=False)


class JobLock(Base):
    """Who runs a scheduled job for one period (e.g. the digest of 2025-06-01)."""

    __tablename__ = "job_locks"
    __table_args__ = (UniqueConstraint("name", "period_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    period_key: Mapped[str] = mapped_column(String(64))
    holder: Mapped[str] = mapped_column(String(200))
    acquired_at: Mapped[datetime] = mapped_column(default=utcnow)


class RateLimitWindow(Base):
    """How many requests one client made in one fixed window, shared by every process on the database.

    ``window`` is the window's number (seconds since the epoch // its length); ``expires_at`` (epoch seconds)
    is when the row can be deleted. Added by migration 0005.
    """

    __tablename__ = "rate_limit_windows"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    window: Mapped[int] = mapped_column(Integer, primary_key=True)
    hits: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[int] = mapped_column(Integer, index=True)


class KnownIssue(Base):
    """An outage notice an agent posted for a topic ("VPN is down in Berlin"), shown above the answers on it.

    Active while ``cleared_at`` is unset and ``expires_at`` is in the future: a forgotten notice ends by itself.
    ``topic`` is a built-in topic name or a knowledge-base article's own topic; ``text`` is stored redacted.
    Added by migration 0007.
    """

    __tablename__ = "known_issues"

    id: Mapped[int] = mapped_column(primary_key=True)
    topic: Mapped[str] = mapped_column(String(64), index=True)
    text: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(64))  # a Slack user id, or "cli:<name>"
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    cleared_at: Mapped[datetime | None]
    cleared_by: Mapped[str | None] = mapped_column(String(64))

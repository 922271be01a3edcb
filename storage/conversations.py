"""Conversations and their messages.

A conversation is one Slack thread (or console session). Message text is
redacted here, on the way in, so a password typed into Slack never reaches
the database whatever the caller forgot.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from answers.redact import redact
from storage.idempotency import insert_new
from storage.models import Conversation, ConversationSource, ConversationState, Message, Role
from storage.types import utcnow

__all__ = ["find_conversation", "get_or_create_conversation", "open_conversation", "append_message", "recent_turns",
           "set_conversation_state", "asked_in"]


def find_conversation(session: Session, *, team_id: str, channel_id: str, thread_ts: str) -> Conversation | None:
    """The conversation for a Slack thread, or None if there is none yet."""
    return session.scalars(
        select(Conversation).where(Conversation.team_id == team_id, Conversation.channel_id == channel_id,
                                   Conversation.thread_ts == thread_ts)
    ).one_or_none()


def get_or_create_conversation(session: Session, *, team_id: str, channel_id: str, thread_ts: str, user_id: str,
                               source: ConversationSource | str) -> Conversation:
    """The conversation for a Slack thread, created (state ``open``) on first use.

    Two deliveries racing on a new thread get the same row: the unique key on
    (team, channel, thread) decides and the loser reads the winner's row.

    Args:
        session: The caller's session.
        team_id: Slack workspace id.
        channel_id: The DM or channel id.
        thread_ts: The thread's root ``ts``.
        user_id: The user who started it; an existing conversation keeps its user.
        source: ``dm``, ``slash``, ``mention`` or ``console``.

    Returns:
        The existing or new conversation (flushed, so it has an id).
    """
    return open_conversation(session, team_id=team_id, channel_id=channel_id, thread_ts=thread_ts, user_id=user_id,
                             source=source)[0]


def open_conversation(session: Session, *, team_id: str, channel_id: str, thread_ts: str, user_id: str,
                      source: ConversationSource | str) -> tuple[Conversation, bool]:
    """:func:`get_or_create_conversation`, and whether this call created it (a new one has no turns to read)."""
    key = {"team_id": team_id, "channel_id": channel_id, "thread_ts": thread_ts}
    existing = find_conversation(session, **key)
    if existing is not None:
        return existing, False
    conversation = insert_new(session, Conversation, **key, user_id=user_id, source=ConversationSource(source))
    if conversation is not None:
        return conversation, True
    winner = find_conversation(session, **key)
    assert winner is not None, "the unique key was taken, so the row exists"
    return winner, False


def append_message(
    session: Session,
    *,
    conversation_id: int,
    role: Role | str,
    text: str,
    intent: str | None = None,
    confidence: float | None = None,
    action: str | None = None,
    reason: str | None = None,
    sources: Sequence[str] = (),
    latency_ms: float | None = None,
    model: str | None = None,
    adapter: str | None = None,
    touch: bool = True,
    slack_ts: str | None = None,
) -> Message:
    """Store one turn, redacted, and mark the conversation as active now.

    Record the engine's decision (intent, confidence, action, sources,
    latency, model, adapter) on the assistant turn: the daily statistics
    count intents there.

    Args:
        session: The caller's session.
        conversation_id: The conversation it belongs to.
        role: ``user``, ``assistant`` or ``agent`` (a human helpdesk agent relayed into the thread).
        text: The text as typed or generated; secrets are masked before storing.
        intent: The routed intent.
        confidence: The router's confidence, 0 to 1.
        action: ``answer``, ``clarify``, ``reject`` or ``escalate``.
        reason: Why the engine chose it (``not covered`` marks a knowledge-base gap).
        sources: Titles of the knowledge-base articles the answer used.
        latency_ms: Time to produce the answer.
        model: The model that generated it, if any.
        adapter: The LoRA adapter used, if any.
        touch: Mark the conversation as active now; a caller storing several turns at once touches it once.
        slack_ts: The Slack ts of the message a user turn came from (to react on it later).

    Returns:
        The stored message, flushed so its id can go into a button value.
    """
    now = utcnow()
    message = Message(
        conversation_id=conversation_id, role=Role(role), text=redact(text).text, intent=intent,
        confidence=confidence, action=action, reason=reason[:32] if reason else None, sources=list(sources),
        latency_ms=latency_ms, model=model, adapter=adapter, created_at=now, slack_ts=slack_ts,
    )
    if touch:
        # Touch the conversation first, so the UPDATE does not autoflush the message; no ORM sync is needed
        # unless this session has the conversation loaded.
        session.execute(update(Conversation).where(Conversation.id == conversation_id).values(updated_at=now),
                        execution_options={"synchronize_session": False})
        loaded = session.identity_map.get(session.identity_key(Conversation, conversation_id))
        if loaded is not None:
            set_committed_value(loaded, "updated_at", now)
    session.add(message)
    session.flush()
    return message


def recent_turns(session: Session, conversation_id: int, *, limit: int = 10) -> list[Message]:
    """The last ``limit`` messages of a conversation, oldest first (the context for a follow-up)."""
    newest_first = session.scalars(
        select(Message).where(Message.conversation_id == conversation_id).order_by(Message.id.desc()).limit(limit)
    ).all()
    return list(reversed(newest_first))


def asked_in(session: Session, answer_id: int) -> tuple[Conversation, str] | None:
    """The conversation of the answer ``answer_id`` and the Slack ts of the user message it answered.

    A turn with no Slack ts (a question re-asked from a topic button) counts as the last one that had one. None
    when the answer does not exist or no question before it has a Slack ts (a slash command, the console, turns
    stored before migration 0004).
    """
    answer = session.get(Message, answer_id)
    if answer is None:
        return None
    slack_ts = session.scalar(
        select(Message.slack_ts).where(Message.conversation_id == answer.conversation_id, Message.id < answer.id,
                                       Message.role == Role.USER, Message.slack_ts.is_not(None))
        .order_by(Message.id.desc()).limit(1))
    if not slack_ts:
        return None
    return session.get(Conversation, answer.conversation_id), slack_ts


def set_conversation_state(session: Session, conversation_id: int, state: ConversationState | str) -> bool:
    """Move a conversation to ``open``, ``handed_to_human`` or ``closed``.

    Returns:
        True if the conversation exists.
    """
    result = session.execute(
        update(Conversation).where(Conversation.id == conversation_id)
        .values(state=ConversationState(state), updated_at=utcnow())
    )
    return result.rowcount == 1

"""Conversations and messages: one row per Slack thread, redacted text, context for follow-ups."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from storage.models import Conversation, ConversationState, Message
from storage.repository import (append_message, find_conversation, get_or_create_conversation, open_conversation,
                                recent_turns, set_conversation_state)

THREAD = {"team_id": "T1", "channel_id": "D_BOB", "thread_ts": "1700000001.000200"}


def test_a_follow_up_in_the_same_thread_continues_the_same_conversation(session_factory):
    with session_factory.begin() as session:
        first = get_or_create_conversation(session, **THREAD, user_id="U_BOB", source="dm")
    with session_factory.begin() as session:
        again = get_or_create_conversation(session, **THREAD, user_id="U_BOB", source="dm")
        other = get_or_create_conversation(session, **{**THREAD, "thread_ts": "1700000002.000300"},
                                           user_id="U_BOB", source="dm")
        assert again.id == first.id
        assert other.id != first.id
        assert again.state == ConversationState.OPEN == "open"
        assert find_conversation(session, **THREAD).id == first.id
        assert find_conversation(session, **{**THREAD, "thread_ts": "0"}) is None


def test_two_deliveries_of_a_new_thread_at_once_create_one_conversation(session_factory, race):
    def open_thread(index: int) -> int:
        with session_factory.begin() as session:
            return get_or_create_conversation(session, **THREAD, user_id="U_BOB", source="mention").id

    ids = race(8, open_thread)
    assert len(set(ids)) == 1
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Conversation)) == 1


def test_only_the_delivery_that_created_a_conversation_is_told_it_is_new(session_factory, race):
    def open_thread(index: int) -> tuple[int, bool]:
        with session_factory.begin() as session:
            conversation, new = open_conversation(session, **THREAD, user_id="U_BOB", source="dm")
            return conversation.id, new

    opened = race(8, open_thread)
    assert len({conversation_id for conversation_id, _ in opened}) == 1
    assert [new for _, new in opened].count(True) == 1
    with session_factory.begin() as session:
        assert open_conversation(session, **THREAD, user_id="U_BOB", source="dm")[1] is False


def test_a_password_typed_into_slack_is_never_stored(session_factory, conversation):
    with session_factory.begin() as session:
        append_message(session, conversation_id=conversation.id, role="user",
                       text="I can't log in, my password is Summer2024! and it says expired")
    with session_factory() as session:
        stored = session.scalars(select(Message.text)).one()
    assert "Summer2024!" not in stored
    assert "[REDACTED]" in stored and "it says expired" in stored


def test_an_answer_keeps_the_engine_decision_and_marks_the_conversation_active(session_factory, conversation):
    with session_factory.begin() as session:
        message = append_message(
            session, conversation_id=conversation.id, role="assistant", text="Here is how to reset it.",
            intent="password_reset", confidence=0.93, action="answer", sources=["Reset your password"],
            latency_ms=41.5, model="SmolLM2-135M", adapter="adapters/helpdesk-v1",
        )
        assert message.id is not None  # flushed: the id can go into the feedback buttons
    with session_factory() as session:
        stored = session.get(Message, message.id)
        touched = session.get(Conversation, conversation.id)
    assert (stored.intent, stored.action, stored.sources) == ("password_reset", "answer", ["Reset your password"])
    assert (stored.confidence, stored.latency_ms, stored.model) == (0.93, 41.5, "SmolLM2-135M")
    assert stored.created_at.tzinfo is UTC
    assert touched.updated_at >= conversation.updated_at
    assert touched.updated_at == stored.created_at


def test_follow_ups_get_the_latest_turns_oldest_first(session_factory, conversation):
    with session_factory.begin() as session:
        for turn in range(6):
            append_message(session, conversation_id=conversation.id, role="user" if turn % 2 == 0 else "assistant",
                           text=f"turn {turn}")
    with session_factory() as session:
        turns = recent_turns(session, conversation.id, limit=4)
        assert [m.text for m in turns] == ["turn 2", "turn 3", "turn 4", "turn 5"]
        assert [m.role for m in turns] == ["user", "assistant", "user", "assistant"]
        assert recent_turns(session, conversation.id + 999) == []


def test_handing_a_conversation_to_a_human_and_closing_it(session_factory, conversation):
    with session_factory.begin() as session:
        assert set_conversation_state(session, conversation.id, ConversationState.HANDED_TO_HUMAN)
        assert not set_conversation_state(session, conversation.id + 999, "closed")
    with session_factory.begin() as session:
        assert session.get(Conversation, conversation.id).state == ConversationState.HANDED_TO_HUMAN
        set_conversation_state(session, conversation.id, "closed")
    with session_factory() as session:
        assert session.get(Conversation, conversation.id).state == "closed"
        with pytest.raises(ValueError):
            set_conversation_state(session, conversation.id, "snoozed")


def test_nothing_is_saved_unless_the_caller_commits(session_factory, conversation):
    with session_factory() as session:
        append_message(session, conversation_id=conversation.id, role="user", text="hello")
        get_or_create_conversation(session, **THREAD, user_id="U_BOB", source="slash")
        session.rollback()
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 0
        assert find_conversation(session, **THREAD) is None


def test_timestamps_are_aware_utc_and_naive_ones_are_refused(session_factory, conversation):
    assert conversation.created_at.tzinfo is UTC
    with session_factory() as session:
        loaded = session.get(Conversation, conversation.id)
        assert loaded.created_at.tzinfo is UTC
        assert abs(loaded.created_at - datetime.now(UTC)) < timedelta(minutes=1)
        paris = datetime(2025, 6, 1, 12, 0, tzinfo=UTC).astimezone(ZoneInfo("Europe/Paris"))
        loaded.updated_at = paris
        session.commit()
        session.expire_all()
        assert session.get(Conversation, conversation.id).updated_at == datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
        loaded.updated_at = datetime(2025, 6, 1, 12, 0)
        with pytest.raises(Exception, match="naive datetime"):
            session.flush()


def test_a_conversation_loaded_in_the_session_shows_its_new_activity_time(session_factory):
    with session_factory.begin() as session:
        conversation = get_or_create_conversation(session, **THREAD, user_id="U_BOB", source="dm")
        message = append_message(session, conversation_id=conversation.id, role="user", text="still there?")
        assert conversation.updated_at == message.created_at

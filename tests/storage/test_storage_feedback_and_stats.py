"""Feedback buttons and the digest's 24-hour operations figures, from seeded data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from storage.models import Feedback
from storage.repository import (append_message, claim_escalation, get_or_create_conversation, open_escalation,
                                operations_stats, rate_escalation, record_feedback, resolve_escalation)

NOW = datetime(2025, 6, 2, 2, 0, tzinfo=UTC)


def test_pressing_solved_twice_counts_once_and_the_latest_verdict_wins(session_factory, conversation):
    with session_factory.begin() as session:
        answer = append_message(session, conversation_id=conversation.id, role="assistant", text="Try this.")
    with session_factory.begin() as session:
        first = record_feedback(session, message_id=answer.id, user_id="U_ALICE", kind="solved")
        again = record_feedback(session, message_id=answer.id, user_id="U_ALICE", kind="solved")
        assert again.id == first.id
    with session_factory.begin() as session:
        record_feedback(session, message_id=answer.id, user_id="U_ALICE", kind="not_helpful")
        record_feedback(session, message_id=answer.id, user_id="U_BOB", kind="helpful")
    with session_factory() as session:
        verdicts = {f.user_id: f.kind for f in session.scalars(select(Feedback))}
    assert verdicts == {"U_ALICE": "not_helpful", "U_BOB": "helpful"}


def test_double_clicks_racing_on_feedback_store_one_row(session_factory, conversation, race):
    with session_factory.begin() as session:
        answer = append_message(session, conversation_id=conversation.id, role="assistant", text="Try this.")

    def press(index: int) -> int:
        with session_factory.begin() as session:
            return record_feedback(session, message_id=answer.id, user_id="U_ALICE", kind="solved").id

    assert len(set(race(6, press))) == 1


def test_feedback_on_an_unknown_message_or_kind_is_refused(session_factory):
    with session_factory() as session:
        with pytest.raises(ValueError):
            record_feedback(session, message_id=1, user_id="U_ALICE", kind="meh")
        with pytest.raises(Exception, match="(?i)foreign key"):
            record_feedback(session, message_id=999, user_id="U_ALICE", kind="solved")


def _seed_day(session_factory) -> None:
    """Yesterday: 4 conversations (one escalated and claimed after 10 min, one after 30), feedback; plus older noise."""
    with session_factory.begin() as session:
        threads = []
        for index, (user, question, intent) in enumerate([
            ("U1", "my vpn keeps dropping", "vpn"), ("U2", "vpn is slow", "vpn"),
            ("U3", "printer jammed, my password is Summer2024!", "printer"), ("U4", "hello", "greeting"),
        ]):
            conversation = get_or_create_conversation(session, team_id="T1", channel_id=f"D{index}",
                                                      thread_ts=f"{index}.0", user_id=user, source="dm")
            asked = append_message(session, conversation_id=conversation.id, role="user", text=question)
            answer = append_message(session, conversation_id=conversation.id, role="assistant", text="...",
                                    intent=intent, action="answer")
            conversation.created_at = asked.created_at = answer.created_at = NOW - timedelta(hours=20 - index)
            threads.append((conversation, answer))
        old = get_or_create_conversation(session, team_id="T1", channel_id="D_OLD", thread_ts="old", user_id="U9",
                                         source="dm")
        old_answer = append_message(session, conversation_id=old.id, role="assistant", text="...", intent="wifi")
        old.created_at = old_answer.created_at = NOW - timedelta(days=3)
        escalations = []
        for (conversation, _), minutes in zip(threads[2:], (10, 30), strict=True):
            escalation, _ = open_escalation(session, conversation_id=conversation.id, summary="help")
            escalation.created_at = NOW - timedelta(hours=10)
            escalations.append((escalation, minutes))
    with session_factory.begin() as session:
        for escalation, minutes in escalations:
            claim_escalation(session, escalation.id, agent_id="U_AGENT",
                             at=NOW - timedelta(hours=10) + timedelta(minutes=minutes))
        resolve_escalation(session, escalations[0][0].id, agent_id="U_AGENT", at=NOW - timedelta(hours=2))
        rate_escalation(session, escalations[0][0].id, user_id="U3", rating=4)
        record_feedback(session, message_id=threads[0][1].id, user_id="U1", kind="solved")
        record_feedback(session, message_id=threads[1][1].id, user_id="U2", kind="not_helpful")
        record_feedback(session, message_id=threads[2][1].id, user_id="U3", kind="not_helpful")
        for feedback in session.scalars(select(Feedback)):
            feedback.created_at = NOW - timedelta(hours=1)


def test_the_digest_counts_yesterdays_operations(session_factory):
    _seed_day(session_factory)
    with session_factory() as session:
        stats = operations_stats(session, until=NOW)
    assert stats.since == NOW - timedelta(hours=24) and stats.until == NOW
    assert stats.conversations == 4
    assert stats.answered_without_human == 2 and stats.deflection_rate == 0.5
    assert (stats.escalations_opened, stats.escalations_claimed, stats.escalations_resolved) == (2, 2, 1)
    assert stats.median_time_to_claim_s == 20 * 60
    assert (stats.satisfaction_average, stats.satisfaction_count) == (4, 1)
    assert (stats.feedback_up, stats.feedback_down) == (1, 2)
    assert stats.top_intents == [("vpn", 2), ("greeting", 1), ("printer", 1)]
    assert stats.not_helpful_questions[0].startswith("printer jammed")
    assert "Summer2024!" not in " ".join(stats.not_helpful_questions)
    assert set(stats.not_helpful_questions) == {"vpn is slow", "printer jammed, my password is [REDACTED]"}


def test_a_quiet_day_gives_zeros_not_errors(session_factory):
    with session_factory() as session:
        stats = operations_stats(session, since=NOW - timedelta(hours=1), until=NOW, top=3, questions=2)
    assert stats.conversations == 0 and stats.deflection_rate is None
    assert stats.median_time_to_claim_s is None and stats.satisfaction_average is None
    assert stats.top_intents == [] and stats.not_helpful_questions == []


def test_intents_are_counted_once_per_answer_not_per_question(session_factory, conversation):
    with session_factory.begin() as session:
        append_message(session, conversation_id=conversation.id, role="user", text="wifi?", intent="wifi")
        append_message(session, conversation_id=conversation.id, role="assistant", text="...", intent="wifi")
    with session_factory() as session:
        assert operations_stats(session).top_intents == [("wifi", 1)]


def test_a_user_is_greeted_once_and_the_most_asked_topics_come_first(session_factory):
    from datetime import timedelta

    from storage import repository as repo
    from storage.types import utcnow

    with session_factory.begin() as session:
        assert repo.mark_greeted(session, team_id="T1", user_id="U1")
        assert not repo.mark_greeted(session, team_id="T1", user_id="U1")
        assert repo.mark_greeted(session, team_id="T2", user_id="U1")  # another workspace, another greeting
        conversation = repo.get_or_create_conversation(session, team_id="T1", channel_id="D1", thread_ts="1.0",
                                                       user_id="U1", source="dm")
        for intent in ("vpn", "printer", "vpn", "greeting", "vpn", "printer", "wifi"):
            repo.append_message(session, conversation_id=conversation.id, role="assistant", text="a", intent=intent)
        repo.append_message(session, conversation_id=conversation.id, role="user", text="q", intent="mfa")
    with session_factory.begin() as session:
        assert repo.most_asked_intents(session, exclude=("greeting",)) == [("vpn", 3), ("printer", 2), ("wifi", 1)]
        assert repo.most_asked_intents(session, limit=1) == [("vpn", 3)]
        assert repo.most_asked_intents(session, since=utcnow() + timedelta(minutes=1)) == []


def test_the_question_an_answer_replied_to_is_found_by_its_slack_ts(session_factory):
    from storage import repository as repo

    with session_factory.begin() as session:
        conversation = repo.get_or_create_conversation(session, team_id="T1", channel_id="C1", thread_ts="5.0/U1",
                                                       user_id="U1", source="mention")
        repo.append_message(session, conversation_id=conversation.id, role="user", text="q1", slack_ts="5.0")
        first = repo.append_message(session, conversation_id=conversation.id, role="assistant", text="a1").id
        repo.append_message(session, conversation_id=conversation.id, role="user", text="q2", slack_ts="6.5")
        second = repo.append_message(session, conversation_id=conversation.id, role="assistant", text="a2").id
        repo.append_message(session, conversation_id=conversation.id, role="user", text="re-asked by a button")
        third = repo.append_message(session, conversation_id=conversation.id, role="assistant", text="a3").id
        slash = repo.get_or_create_conversation(session, team_id="T1", channel_id="C1", thread_ts="slash:1",
                                                user_id="U1", source="slash")
        repo.append_message(session, conversation_id=slash.id, role="user", text="q")
        fourth = repo.append_message(session, conversation_id=slash.id, role="assistant", text="a4").id
    with session_factory.begin() as session:
        assert repo.asked_in(session, first)[1] == "5.0" and repo.asked_in(session, second)[1] == "6.5"
        assert repo.asked_in(session, first)[0].channel_id == "C1"
        assert repo.asked_in(session, third)[1] == "6.5"  # the question the button re-asked
        assert repo.asked_in(session, fourth) is None and repo.asked_in(session, 999) is None

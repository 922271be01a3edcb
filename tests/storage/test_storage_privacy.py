"""Retention and data access: purging old conversations, exporting one user's data as JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from storage.models import Conversation, Escalation, Feedback, GreetedUser, KbDraft, Message
from storage.repository import (acquire_job_lock, append_message, claim_escalation, create_kb_draft, export_user,
                                get_or_create_conversation, mark_event_processed, open_escalation, purge_older_than,
                                record_feedback)

NOW = datetime(2025, 9, 1, tzinfo=UTC)


def _conversation_with_everything(session, *, user: str, thread: str, last_active: datetime) -> Conversation:
    conversation = get_or_create_conversation(session, team_id="T1", channel_id=f"D_{user}", thread_ts=thread,
                                              user_id=user, source="dm")
    append_message(session, conversation_id=conversation.id, role="user", text=f"{user}: my pin is 4921-77 help")
    answer = append_message(session, conversation_id=conversation.id, role="assistant", text="Try this.",
                            intent="mfa", sources=["Set up MFA"])
    record_feedback(session, message_id=answer.id, user_id=user, kind="not_helpful")
    escalation, _ = open_escalation(session, conversation_id=conversation.id, summary=f"{user} needs MFA reset")
    claim_escalation(session, escalation.id, agent_id="U_AGENT")
    create_kb_draft(session, escalation_id=escalation.id, title="Reset MFA", body="Steps...")
    session.flush()
    conversation.updated_at = last_active
    return conversation


def _count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def test_retention_purges_old_conversations_with_everything_attached(session_factory):
    with session_factory.begin() as session:
        old = _conversation_with_everything(session, user="U_OLD", thread="1.0", last_active=NOW - timedelta(days=91))
        _conversation_with_everything(session, user="U_NEW", thread="2.0", last_active=NOW - timedelta(days=89))
        mark_event_processed(session, "Ev_OLD", received_at=NOW - timedelta(days=100))
        mark_event_processed(session, "Ev_NEW", received_at=NOW)
        acquire_job_lock(session, name="digest", period_key="2025-05-01", holder="h")
        session.add_all([GreetedUser(team_id="T1", user_id="U_OLD", greeted_at=NOW - timedelta(days=91)),
                         GreetedUser(team_id="T1", user_id="U_NEW", greeted_at=NOW)])
    with session_factory.begin() as session:
        counts = purge_older_than(session, NOW - timedelta(days=90))
    assert counts.as_dict() == {"conversations": 1, "messages": 2, "feedback": 1, "escalations": 1,
                                "processed_events": 1, "job_locks": 0, "pending_questions": 0, "greeted_users": 1}
    with session_factory() as session:
        assert session.get(Conversation, old.id) is None
        assert (_count(session, Conversation), _count(session, Message), _count(session, Feedback),
                _count(session, Escalation)) == (1, 2, 1, 1)
        drafts = session.scalars(select(KbDraft).order_by(KbDraft.id)).all()
        assert [d.escalation_id is None for d in drafts] == [True, False]  # the article stays, unlinked


def test_purging_a_fresh_database_deletes_nothing(session_factory):
    with session_factory.begin() as session:
        assert purge_older_than(session, NOW).as_dict() == dict.fromkeys(
            ("conversations", "messages", "feedback", "escalations", "processed_events", "job_locks",
             "pending_questions", "greeted_users"), 0)


def test_a_purge_is_undone_if_the_caller_rolls_back(session_factory):
    with session_factory.begin() as session:
        _conversation_with_everything(session, user="U_OLD", thread="1.0", last_active=NOW - timedelta(days=91))
    with session_factory() as session:
        assert purge_older_than(session, NOW).conversations == 1
        session.rollback()
    with session_factory() as session:
        assert _count(session, Message) == 2


def test_a_deleted_conversation_takes_its_rows_with_it_even_without_the_purge(session_factory):
    with session_factory.begin() as session:
        conversation = _conversation_with_everything(session, user="U_X", thread="1.0", last_active=NOW)
    with session_factory.begin() as session:
        session.delete(session.get(Conversation, conversation.id))
    with session_factory() as session:
        assert (_count(session, Message), _count(session, Feedback), _count(session, Escalation)) == (0, 0, 0)


def test_a_user_gets_everything_stored_about_them_as_json_and_nothing_else(session_factory):
    with session_factory.begin() as session:
        _conversation_with_everything(session, user="U123", thread="1.0", last_active=NOW)
        _conversation_with_everything(session, user="U_OTHER", thread="2.0", last_active=NOW)
    with session_factory() as session:
        export = export_user(session, "U123")
        agent = export_user(session, "U_AGENT")
    document = json.loads(json.dumps(export))
    assert document["user_id"] == "U123"
    [conversation] = document["conversations"]
    assert conversation["user_id"] == "U123" and conversation["source"] == "dm"
    assert [m["role"] for m in conversation["messages"]] == ["user", "assistant"]
    assert conversation["messages"][0]["text"] == "U123: my pin is [REDACTED] help"
    assert conversation["messages"][1]["sources"] == ["Set up MFA"]
    assert conversation["feedback"][0]["kind"] == "not_helpful"
    assert conversation["escalations"][0]["status"] == "claimed"
    assert datetime.fromisoformat(conversation["created_at"]).tzinfo is not None
    assert [f["user_id"] for f in document["feedback_given"]] == ["U123"]
    assert "U_OTHER" not in json.dumps(document)
    handled = json.loads(json.dumps(agent))["escalations_handled"]
    assert len(handled) == 2 and all("summary" not in e for e in handled)  # the requesters' words stay out
    assert agent["conversations"] == []


def test_exporting_an_unknown_user_gives_an_empty_document(session_factory):
    with session_factory() as session:
        export = export_user(session, "U_NOBODY")
    assert (export["conversations"], export["feedback_given"], export["escalations_handled"]) == ([], [], [])
    assert export["greeted"] == []


def test_the_export_says_when_the_messages_tab_greeted_the_user(session_factory):
    from storage.repository import mark_greeted

    with session_factory.begin() as session:
        mark_greeted(session, team_id="T1", user_id="U123")
        mark_greeted(session, team_id="T1", user_id="U_OTHER")
    with session_factory() as session:
        export = export_user(session, "U123")
    [greeted] = export["greeted"]
    assert (greeted["team_id"], greeted["user_id"]) == ("T1", "U123") and "U_OTHER" not in json.dumps(export)
    assert datetime.fromisoformat(greeted["greeted_at"]).tzinfo is not None

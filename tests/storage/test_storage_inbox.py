"""Stored questions (durable intake) on every engine: one row per Slack event, one winner per race."""

from __future__ import annotations

from storage.inbox import (finish_question, intake_sessions, start_question, store_question, take_over_question,
                           unfinished_questions)

QUESTION = {"team_id": "T1", "channel_id": "D_BOB", "thread_ts": "1700000001.000200", "user_id": "U_BOB",
            "source": "dm", "reply_channel": "D_BOB", "reply_thread_ts": "1700000001.000200", "ephemeral": False}


def test_a_question_is_stored_redacted_once_per_event(session_factory):
    with session_factory.begin() as session:
        first, new = store_question(session, event_id="Ev1", text="vpn down, my password is Hunter2!x",
                                    holder="a:1:x", **QUESTION)
        assert new and "Hunter2!x" not in first.text
    with session_factory.begin() as session:
        again, new = store_question(session, event_id="Ev1", text="vpn down", holder="b:2:y", **QUESTION)
        assert not new and again.id == first.id and again.holder == "a:1:x"
        _, new = store_question(session, event_id=None, text="a slash command", holder="a:1:x", **QUESTION)
        _, also_new = store_question(session, event_id=None, text="another", holder="a:1:x", **QUESTION)
        assert new and also_new  # no event id: never a duplicate


def test_of_jobs_racing_to_begin_one_question_one_wins_and_a_finished_one_is_not_begun(session_factory, race):
    with session_factory.begin() as session:
        row, _ = store_question(session, event_id="Ev2", text="printer offline", holder="a:1:x", **QUESTION)

    def begin(_index: int) -> bool:
        with session_factory.begin() as session:
            return start_question(session, row.id, holder="a:1:x") is not None

    assert race(6, begin).count(True) == 1
    with session_factory.begin() as session:
        finish_question(session, row.id, outcome="answered")
        assert unfinished_questions(session) == []
        assert not take_over_question(session, row, holder="b:2:y")


def test_of_instances_racing_to_take_over_a_question_one_wins(session_factory, race):
    with session_factory.begin() as session:
        seen, _ = store_question(session, event_id="Ev3", text="wifi slow", holder="dead:9:z", **QUESTION)

    def take(index: int) -> bool:
        with session_factory.begin() as session:
            return take_over_question(session, seen, holder=f"replica-{index}:1:x")

    assert race(6, take).count(True) == 1


def test_the_intake_sessions_write_to_the_same_database(db_engine, session_factory):
    with intake_sessions(db_engine).begin() as session:
        store_question(session, event_id="Ev4", text="outlook", holder="a:1:x", **QUESTION)
    with session_factory() as session:
        assert [q.event_id for q in unfinished_questions(session)] == ["Ev4"]


def test_a_stored_question_keeps_the_slack_ts_of_the_message_that_asked(session_factory):
    """A question taken over after a restart still knows which message to react on."""
    with session_factory.begin() as session:
        row, _ = store_question(session, event_id="Ev9", text="printer offline", holder="a:1:x",
                                message_ts="1700000001.000300", **QUESTION)
    with session_factory.begin() as session:
        [found] = [q for q in unfinished_questions(session) if q.id == row.id]
        assert found.message_ts == "1700000001.000300"

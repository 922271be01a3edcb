"""Redelivered Slack events and the nightly job: exactly one winner, and the caller's transaction survives."""

from __future__ import annotations

from sqlalchemy import func, select

from storage.models import JobLock, Message, ProcessedEvent
from storage.repository import acquire_job_lock, append_message, mark_event_processed


def test_a_redelivered_event_is_recognised(session_factory):
    with session_factory.begin() as session:
        assert mark_event_processed(session, "Ev01ABC")
    with session_factory.begin() as session:
        assert not mark_event_processed(session, "Ev01ABC")
        assert mark_event_processed(session, "Ev02DEF")
    with session_factory() as session:
        received = session.get(ProcessedEvent, "Ev01ABC").received_at
        assert received.tzinfo is not None


def test_eight_deliveries_of_one_event_at_once_answer_once(session_factory, race):
    def deliver(index: int) -> bool:
        with session_factory.begin() as session:
            return mark_event_processed(session, "Ev_SAME")

    assert race(8, deliver).count(True) == 1


def test_a_duplicate_leaves_the_callers_other_writes_intact(session_factory, conversation):
    with session_factory.begin() as session:
        mark_event_processed(session, "Ev_DUP")
    with session_factory.begin() as session:
        append_message(session, conversation_id=conversation.id, role="user", text="written before the duplicate")
        assert not mark_event_processed(session, "Ev_DUP")
        append_message(session, conversation_id=conversation.id, role="user", text="written after it")
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 2


def test_a_failed_answer_rolled_back_lets_slack_redeliver_the_event(session_factory):
    # Regression guard for SQLite's driver: a SAVEPOINT opened before any BEGIN
    # used to commit on its own, so the rollback below would not undo the mark.
    with session_factory() as session:
        assert mark_event_processed(session, "Ev_RETRY")
        session.rollback()
    with session_factory.begin() as session:
        assert mark_event_processed(session, "Ev_RETRY")


def test_two_instances_at_2am_run_the_digest_once(session_factory, race):
    def fire(index: int) -> bool:
        with session_factory.begin() as session:
            return acquire_job_lock(session, name="digest", period_key="2025-06-01", holder=f"host{index}:{index}")

    wins = race(8, fire)
    assert wins.count(True) == 1
    with session_factory() as session:
        lock = session.scalars(select(JobLock)).one()
        assert lock.holder == f"host{wins.index(True)}:{wins.index(True)}"
        assert lock.acquired_at.tzinfo is not None


def test_the_next_night_and_other_jobs_are_separate_locks(session_factory):
    with session_factory.begin() as session:
        assert acquire_job_lock(session, name="digest", period_key="2025-06-01", holder="a")
        assert acquire_job_lock(session, name="digest", period_key="2025-06-02", holder="a")
        assert acquire_job_lock(session, name="retention", period_key="2025-06-01", holder="a")
        assert not acquire_job_lock(session, name="digest", period_key="2025-06-01", holder="b")

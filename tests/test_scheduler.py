"""The daily retention job: runs once a day across instances and purges old conversations."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from bot.scheduler import run_retention
from storage import repository as repo
from storage.db import make_engine, make_session_factory
from storage.migrate import upgrade


def test_two_instances_purge_once_per_day_and_only_old_conversations(tmp_path):
    url = f"sqlite:///{tmp_path / 'itbot.db'}"
    upgrade(url)
    sessions = make_session_factory(make_engine(url))
    with sessions.begin() as session:
        old = repo.get_or_create_conversation(session, team_id="T", channel_id="D1", thread_ts="1", user_id="U0OLD0001",
                                              source="dm")
        old.updated_at = datetime.now(timezone.utc) - timedelta(days=200)
        repo.get_or_create_conversation(session, team_id="T", channel_id="D2", thread_ts="2", user_id="U0NEW0001",
                                        source="dm")
    first = run_retention(sessions, retention_days=90, today="2026-11-24")
    second = run_retention(make_session_factory(make_engine(url)), retention_days=90, today="2026-11-24")
    assert (first, second) == (True, False)
    with sessions.begin() as session:
        assert repo.export_user(session, "U0OLD0001")["conversations"] == []
        assert len(repo.export_user(session, "U0NEW0001")["conversations"]) == 1
    assert run_retention(sessions, retention_days=90, today="2026-11-25")


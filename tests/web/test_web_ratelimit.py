"""The database-backed rate limiter on both engines: fixed windows, and exact counts under concurrent hits."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from storage.db import make_engine, make_session_factory
from storage.migrate import upgrade
from storage.models import RateLimitWindow
from storage.ratelimit import hit

POSTGRES_URL = os.environ.get("ITBOT_TEST_POSTGRES_URL")  # read at import: the root conftest scrubs ITBOT_*


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def sessions(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'itbot.db'}"
    elif not POSTGRES_URL:
        pytest.skip("PostgreSQL not configured: set ITBOT_TEST_POSTGRES_URL (eval \"$(.ci/postgres.sh)\")")
    else:
        url = POSTGRES_URL
        engine = make_engine(url)
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    upgrade(url)
    engine = make_engine(url)
    yield make_session_factory(engine)
    engine.dispose()


def test_a_window_allows_its_limit_then_tells_how_long_to_wait(sessions):
    with sessions.begin() as session:
        decisions = [hit(session, "ip:a", limit=3, period_s=60, now=1200.0 + i) for i in range(4)]
        other = hit(session, "ip:b", limit=3, period_s=60, now=1203.0)
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions[:3]] == [2, 1, 0]
    assert decisions[3].retry_after_s == 57.0 and other.allowed
    with sessions.begin() as session:
        assert hit(session, "ip:a", limit=3, period_s=60, now=1260.0).allowed


def test_concurrent_hits_are_all_counted(sessions):
    allowed: list[bool] = []
    lock = threading.Lock()

    def client() -> None:
        for _ in range(15):
            with sessions.begin() as session:
                decision = hit(session, "ip:burst", limit=40, period_s=3600, now=7200.0)
            with lock:
                allowed.append(decision.allowed)

    threads = [threading.Thread(target=client) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert allowed.count(True) == 40 and len(allowed) == 60
    with sessions.begin() as session:
        assert session.scalar(select(RateLimitWindow.hits).where(RateLimitWindow.key == "ip:burst")) == 60


def test_expired_windows_are_swept(sessions, monkeypatch):
    import storage.ratelimit

    with sessions.begin() as session:
        hit(session, "ip:old", limit=5, period_s=60, now=60.0)
    monkeypatch.setattr(storage.ratelimit, "SWEEP_PROBABILITY", 1.0)
    with sessions.begin() as session:
        hit(session, "ip:new", limit=5, period_s=60, now=6000.0)
    with sessions.begin() as session:
        assert session.scalar(select(func.count()).select_from(RateLimitWindow)) == 1

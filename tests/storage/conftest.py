"""Storage fixtures: every test runs on a fresh SQLite file and, when configured, a fresh PostgreSQL schema.

PostgreSQL tests need ``ITBOT_TEST_POSTGRES_URL`` (``eval "$(.ci/postgres.sh)"``
starts a throwaway server and sets it). There is no ``__init__.py`` here on
purpose: it would make this folder a package named ``storage`` and shadow
the real one.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from storage.db import make_engine, make_session_factory
from storage.models import Base, Conversation
from storage.repository import get_or_create_conversation

# Read at import: the root conftest scrubs ITBOT_* variables before each test runs.
POSTGRES_URL = os.environ.get("ITBOT_TEST_POSTGRES_URL")
NO_POSTGRES = "PostgreSQL not configured: set ITBOT_TEST_POSTGRES_URL (eval \"$(.ci/postgres.sh)\")"

T = TypeVar("T")


def _reset_postgres(url: str) -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            connection.execute(text("DROP SCHEMA IF EXISTS expected CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty database: a new SQLite file, or PostgreSQL with a freshly created schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'itbot.db'}"
    if not POSTGRES_URL:
        pytest.skip(NO_POSTGRES)
    _reset_postgres(POSTGRES_URL)
    return POSTGRES_URL


@pytest.fixture
def db_engine(database_url: str) -> Iterator[Engine]:
    """An engine on a database holding the models' schema."""
    engine = make_engine(database_url)
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def session_factory(db_engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(db_engine)


@pytest.fixture
def conversation(session_factory: sessionmaker[Session]) -> Conversation:
    """A committed DM conversation of user U_ALICE."""
    with session_factory.begin() as session:
        return get_or_create_conversation(session, team_id="T1", channel_id="D_ALICE", thread_ts="1700000000.000100",
                                          user_id="U_ALICE", source="dm")


@pytest.fixture
def race() -> Callable[[int, Callable[[int], T]], list[T]]:
    """``race(n, work)`` runs ``work(i)`` on ``n`` threads released at one instant and returns the results."""
    return _race


def _race(workers: int, work: Callable[[int], T]) -> list[T]:
    barrier = threading.Barrier(workers)
    results: list[Any] = [None] * workers
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = work(index)
        except BaseException as error:  # noqa: BLE001 - handed back to the test thread
            errors.append(error)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    if errors:
        raise errors[0]
    return results

"""Several replicas on one PostgreSQL database behave as one bot: one limit per user, one answer, one digest.

The limiter's units run on SQLite and, when configured, PostgreSQL. The replica run needs PostgreSQL: SQLite is
for one process (``docs/scaling.md``), so that test is skipped without ``ITBOT_TEST_POSTGRES_URL``
(``eval "$(.ci/postgres.sh)"``). It starts two real ``itbot run`` processes on one database against the local
fake Slack, which spreads the events over both Socket Mode connections as Slack spreads them over an app's
connections.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from bot.ratelimit import RateLimiter
from storage.db import make_engine, make_session_factory
from storage.models import Base, JobLock, Message, PendingQuestion, RateLimitWindow
from storage.ratelimit import hit_sliding

POSTGRES_URL = os.environ.get("ITBOT_TEST_POSTGRES_URL")  # read at import: the root conftest scrubs ITBOT_*
NO_POSTGRES = ("PostgreSQL not configured: replicas need a database server (SQLite is for one process); set "
               "ITBOT_TEST_POSTGRES_URL (eval \"$(.ci/postgres.sh)\")")
DIGEST = "C0DIGEST01"
LIMITED = "faster than I can keep up"
THINKING = "Looking into it"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A new, empty PostgreSQL database of this test's own, dropped afterwards (other tests reset ``public``)."""
    if not POSTGRES_URL:
        pytest.skip(NO_POSTGRES)
    name = f"itbot_replicas_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def sessions(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    """Sessions on an empty database with the schema: a SQLite file, or a PostgreSQL database of its own."""
    url = (f"sqlite:///{tmp_path / 'itbot.db'}" if request.param == "sqlite"
           else request.getfixturevalue("postgres_url"))
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    yield make_session_factory(engine)
    engine.dispose()


# -- the shared limit ----------------------------------------------------------------------------------------------

def test_two_limiters_on_one_database_share_each_users_allowance(sessions):
    now = [1_000_000.0]
    replicas = [RateLimiter(count=4, period_s=3600, sessions=sessions, clock=lambda: now[0]) for _ in range(2)]
    waits = [replicas[n % 2].check("U1") for n in range(6)]
    assert waits[:4] == [0.0] * 4 and all(wait > 0 for wait in waits[4:])
    assert replicas[1].check("U2") == 0.0  # per user
    with sessions() as session:  # a refused question is not counted: "try again in N" holds
        assert session.scalar(select(RateLimitWindow.hits).where(RateLimitWindow.key == "slack:U1")) == 4


def test_a_burst_across_a_window_end_is_not_let_through_twice(sessions):
    with sessions.begin() as session:
        before = [hit_sliding(session, "slack:U1", limit=4, period_s=60, now=1259.0) for _ in range(4)]
        after = hit_sliding(session, "slack:U1", limit=4, period_s=60, now=1261.0)  # fixed windows would allow it
        later = hit_sliding(session, "slack:U1", limit=4, period_s=60, now=1261.0 + after.retry_after_s)
    assert all(d.allowed for d in before) and not after.allowed
    assert 14 <= after.retry_after_s <= 16  # a quarter of the previous window slid out: one question fits
    assert later.allowed


def test_the_wait_told_to_a_user_over_the_limit_is_when_one_more_fits(sessions):
    with sessions.begin() as session:
        decisions = [hit_sliding(session, "slack:U1", limit=2, period_s=60, now=600.0 + n) for n in range(3)]
        retry = decisions[-1].retry_after_s
        assert not hit_sliding(session, "slack:U1", limit=2, period_s=60, now=602.0 + retry - 2).allowed
        assert hit_sliding(session, "slack:U1", limit=2, period_s=60, now=602.0 + retry).allowed
    assert [d.allowed for d in decisions] == [True, True, False]


def test_concurrent_questions_on_two_replicas_are_allowed_exactly_the_limit(sessions):
    replicas = [RateLimiter(count=10, period_s=3600, sessions=sessions) for _ in range(2)]
    waits: list[float] = []
    lock = threading.Lock()

    def user(index: int) -> None:
        for _ in range(8):
            wait = replicas[index % 2].check("U0BURST")
            with lock:
                waits.append(wait)

    threads = [threading.Thread(target=user, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(waits) == 32 and waits.count(0.0) == 10


def test_when_the_database_cannot_count_the_limit_is_kept_in_this_process(caplog):
    class Broken:
        def begin(self):
            raise OperationalError("SELECT 1", {}, Exception("server closed the connection"))

    limiter = RateLimiter(count=2, period_s=60, sessions=Broken(), clock=lambda: 100.0)  # type: ignore[arg-type]
    assert [limiter.check("U1"), limiter.check("U1")] == [0.0, 0.0]
    assert limiter.check("U1") == 60
    assert "counting it in this process" in caplog.text


# -- the fake spreads events over connections -------------------------------------------------------------------

def test_the_fake_hands_events_to_each_connection_in_turn(fake_round_robin):
    from slack_bolt import App
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    fake = fake_round_robin
    received: list[tuple[int, str]] = []
    handlers = []

    def recorder(replica: int):
        return lambda event: received.append((replica, event["text"]))

    for replica in range(2):
        app = App(client=fake.web_client(), token_verification_enabled=False)
        app.event("message")(recorder(replica))
        handlers.append(SocketModeHandler(app, fake.app_token))
    try:
        for handler in handlers:
            handler.connect()
        connections = fake.wait_for_connections(2, timeout=10)
        pushed = [fake.push(fake.payloads.message(f"question {n}")) for n in range(4)]
        pushed.append(fake.push(fake.payloads.message("to the first"), connection_id=connections[0].id))
        for envelope_id in pushed:
            fake.wait_for_ack(envelope_id)
        fake.wait_until(lambda: len(received) == 5, what="every event handled")
    finally:
        for handler in handlers:
            fake.stop_handler(handler)
    assert Counter(fake.pushed(e).connection_id for e in pushed[:4]) == {c.id: 2 for c in connections}
    assert fake.pushed(pushed[4]).connection_id == connections[0].id
    assert sorted(Counter(replica for replica, _ in received).values()) == [2, 3]  # 2 + 2, and the targeted one


@pytest.fixture
def fake_round_robin(monkeypatch: pytest.MonkeyPatch):
    from tests.fakeslack import FakeSlack

    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    with FakeSlack.start(delivery="round_robin") as fake:
        yield fake


# -- two replicas ----------------------------------------------------------------------------------------------

def _replies(fake, event: dict) -> list[dict]:
    """The bot's replies in the thread of a DM question, less the "Looking into it" placeholder."""
    bot_user = fake.workspace.bot_user_id
    thread = fake.messages(event["channel"], thread_ts=event["ts"])[1:]
    return [m for m in thread if (m.get("bot_id") or m.get("user") == bot_user) and THINKING not in m.get("text", "")]


def _start(env: dict[str, str], log: Path) -> subprocess.Popen:
    from tests.conftest import _itbot

    command, full_env = _itbot(env)
    with log.open("w") as out:
        return subprocess.Popen(command + ["run"], env=full_env, stdout=out, stderr=subprocess.STDOUT)


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_two_replicas_answer_each_question_once_share_the_limit_and_post_one_digest(
        postgres_url, fake_round_robin, engine, tmp_path):
    """Two ``itbot run`` processes on one PostgreSQL database; Slack's events spread over both connections."""
    from tests.fakeslack import User

    fake = fake_round_robin
    light = [User(id=f"U0REPL{n:03d}", name=f"light{n}", real_name=f"Light {n}", email=f"l{n}@example.com")
             for n in range(5)]
    heavy = User(id="U0REPHEAVY", name="heavy", real_name="Heavy Asker", email="heavy@example.com")
    for user in (*light, heavy):
        fake.add_user(user)
    env = {"SLACK_BOT_TOKEN": fake.bot_token, "SLACK_APP_TOKEN": fake.app_token, "SLACK_API_URL": fake.api_url,
           "ITBOT_DATABASE_URL": postgres_url, "ITBOT_RATE_LIMIT": "4/hour", "ITBOT_METRICS_PORT": "0",
           "ITBOT_DIGEST_CHANNEL": DIGEST, "ITBOT_DIGEST_CRON": "* * * * *", "ITBOT_DIGEST_QUESTIONS": "10"}
    logs = [tmp_path / f"replica-{n}.log" for n in range(2)]
    replicas = [_start(env, log) for log in logs]
    try:
        # each replica's client may replace its first connection right after connecting: wait until both settle
        connections = fake.wait_for_connections(2, timeout=300, steady_s=6)
        texts = ["my vpn keeps dropping", "printer says offline", "forgot my password", "outlook not syncing"]
        envelopes, heavy_envelopes = [], []
        for n in range(8):  # the heavy user's questions alternate between the replicas' connections
            envelope = fake.payloads.message(f"{texts[n % 4]} (heavy {n})", user=heavy.id)
            fake.push(envelope, connection_id=connections[n % 2].id)
            heavy_envelopes.append(envelope)
        for n in range(15):  # three each from five users, handed round the connections
            envelope = fake.payloads.message(f"{texts[n % 4]} (light {n})", user=light[n % 5].id)
            fake.push(envelope)
            envelopes.append(envelope)
        events = [e["payload"]["event"] for e in envelopes + heavy_envelopes]
        fake.wait_until(lambda: all(_replies(fake, e) for e in events), timeout=120, what="a reply to every question")
        digest = fake.wait_until(lambda: fake.messages(DIGEST), timeout=150, what="the digest")
        fake.wait_until(lambda: all("nightly digest for" in log.read_text() for log in logs), timeout=150,
                        what="the digest job run in both replicas")
        time.sleep(2.0)  # a duplicate answer or digest would arrive now
    finally:
        for replica in replicas:
            replica.send_signal(signal.SIGTERM)
        codes = [replica.wait(timeout=60) for replica in replicas]
    output = "\n".join(f"--- {log.name}\n{log.read_text()[-3000:]}" for log in logs)
    assert codes == [0, 0], output

    # every question answered exactly once; the heavy user's first four, across both replicas, and no more
    replies = {e["ts"]: _replies(fake, e) for e in events}
    assert all(len(found) == 1 for found in replies.values()), output
    light_replies = [replies[e["payload"]["event"]["ts"]][0]["text"] for e in envelopes]
    assert not any(LIMITED in reply for reply in light_replies)
    heavy_replies = [replies[e["payload"]["event"]["ts"]][0]["text"] for e in heavy_envelopes]
    assert sum(LIMITED in reply for reply in heavy_replies) == 4, heavy_replies
    assert {fake.pushed(e["envelope_id"]).connection_id for e in heavy_envelopes} == {c.id for c in connections}
    assert len(digest) == 1 and "nightly digest for" in output

    database = make_engine(postgres_url)
    try:
        with database.connect() as connection:
            outcomes = dict(connection.execute(select(PendingQuestion.outcome, func.count())
                                               .group_by(PendingQuestion.outcome)).all())
            holders = connection.scalar(select(func.count(func.distinct(PendingQuestion.holder))))
            answers = connection.execute(select(Message.conversation_id, func.count())
                                         .where(Message.role == "assistant").group_by(Message.conversation_id)).all()
            heavy_hits = connection.scalar(select(func.sum(RateLimitWindow.hits))
                                           .where(RateLimitWindow.key == f"slack:{heavy.id}"))
            digest_claims = connection.scalar(select(func.count()).select_from(JobLock).where(JobLock.name == "digest"))
    finally:
        database.dispose()
    assert outcomes == {"answered": 19, "rate limited": 4}
    assert holders == 2  # both replicas took questions in
    assert len(answers) == 19 and all(count == 1 for _, count in answers)  # one stored answer per question
    assert heavy_hits == 4 and digest_claims == 1

"""Nothing lost: every question Slack saw acknowledged is answered exactly once, across crashes and restarts.

Slack does not redeliver an acknowledged event, so the bot stores each question before the acknowledgement and a
restarted process (or another replica) answers what a dead one left behind.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
from datetime import timedelta

import pytest

from bot import inbox
from bot.conversation import Question
from bot.listeners.intake import recover
from storage.types import utcnow
from tests.conftest import start_itbot

DEAD = f"{inbox.HOST}:999999:gone"  # a process of this host that no longer runs


def _answers(fake, event: dict) -> list[dict]:
    bot_user = fake.workspace.bot_user_id
    thread = fake.messages(event["channel"], thread_ts=event.get("thread_ts") or event["ts"])[1:]
    return [m for m in thread if (m.get("bot_id") or m.get("user") == bot_user) and "Looking into it" not in
            m.get("text", "")]


def _left_behind(bot, text: str, *, event_id: str | None = None, received_ago: timedelta = timedelta(0),
                 started: bool = False, thread_ts: str | None = None) -> tuple[int, dict]:
    """A question a dead process stored (and maybe began) but never answered; returns its id and DM event."""
    envelope = bot.fake.payloads.message(text, **({"thread_ts": thread_ts} if thread_ts else {}))
    event = envelope["payload"]["event"]
    bot.fake._remember("events_api", envelope["payload"])  # the user's message is in the DM, as Slack had it
    question = Question(team_id=bot.fake.workspace.team_id, channel_id=event["channel"], thread_ts=event["ts"],
                        user_id=event["user"], source="dm", text=text)
    with bot.services.sessions.begin() as session:
        from storage.inbox import store_question

        row, _ = store_question(session, event_id=event_id, team_id=question.team_id, channel_id=question.channel_id,
                                thread_ts=question.thread_ts, user_id=question.user_id, source="dm", text=text,
                                reply_channel=event["channel"], reply_thread_ts=event["ts"], ephemeral=False,
                                holder=DEAD)
        row.received_at = row.held_at = utcnow() - received_ago
        if started:
            row.started_at, row.attempts = utcnow() - received_ago, 1
        return row.id, envelope


def _outcome(bot, question_id: int) -> str | None:
    with bot.services.sessions() as session:
        from storage.models import PendingQuestion

        return session.get(PendingQuestion, question_id).outcome


def test_a_dm_is_on_disk_before_slack_hears_it_arrived_and_marked_answered_after(bot):
    envelope, event = bot.dm("my vpn keeps dropping, my password is Zq7!intake-secret")
    ack = bot.fake.wait_for_ack(envelope)
    assert ack is not None
    bot.final_answer(event)
    bot.settle()
    with sqlite3.connect(bot.database_path) as db:
        rows = db.execute("SELECT text, outcome, holder, attempts FROM pending_questions").fetchall()
    assert len(rows) == 1
    text, outcome, holder, attempts = rows[0]
    assert "Zq7!intake-secret" not in text and "vpn" in text  # stored redacted
    assert (outcome, holder, attempts) == ("answered", inbox.HOLDER, 1)


def test_a_redelivered_event_whose_question_is_stored_but_unanswered_is_answered(bot):
    envelope = bot.fake.payloads.message("printer says offline")
    event_id = envelope["payload"]["event_id"]
    question_id, _ = _left_behind(bot, "printer says offline", event_id=event_id)
    bot.fake.push(envelope)  # Slack delivers the event again (the first delivery died with the process)
    answer = bot.final_answer(envelope["payload"]["event"])
    assert "printer" in json.dumps(answer).lower()
    bot.settle()
    assert _outcome(bot, question_id) == "answered"


def test_a_redelivery_of_an_answered_question_is_dropped(bot):
    envelope_id, event = bot.dm("wifi connected but no internet")
    bot.final_answer(event)
    bot.settle()
    bot.fake.redeliver(envelope_id)
    bot.fake.wait_for_ack(bot.fake.pushed(envelope_id).envelope["envelope_id"])
    bot.settle()
    assert len(_answers(bot.fake, event)) == 1


def test_questions_a_stopped_process_left_are_answered_once_by_the_next(bot):
    left = [_left_behind(bot, text) for text in ("how do I install zoom", "locked out of my account")]
    assert recover(bot.services, bot.services_client) == 2
    assert recover(bot.services, bot.services_client) == 0  # now held by this live process
    bot.settle()
    for question_id, envelope in left:
        assert len(_answers(bot.fake, envelope["payload"]["event"])) == 1
        assert _outcome(bot, question_id) == "answered"


def test_a_late_answer_says_sorry_for_the_wait(bot):
    _, envelope = _left_behind(bot, "teams camera not working", received_ago=timedelta(minutes=5))
    recover(bot.services, bot.services_client)
    bot.settle()
    (answer,) = _answers(bot.fake, envelope["payload"]["event"])
    assert "Sorry for the wait" in json.dumps(answer)


def test_a_question_found_unanswered_after_more_than_an_hour_asks_the_user_to_ask_again(bot):
    question_id, envelope = _left_behind(bot, "my laptop is super slow", received_ago=timedelta(hours=3))
    recover(bot.services, bot.services_client)
    bot.settle()
    (reply,) = _answers(bot.fake, envelope["payload"]["event"])
    assert "ask again" in reply["text"] and "Sources" not in json.dumps(reply)
    assert _outcome(bot, question_id) == "expired"


def test_an_answer_posted_just_before_the_crash_is_not_posted_again(bot):
    question_id, envelope = _left_behind(bot, "outlook not syncing", started=True, received_ago=timedelta(seconds=5))
    event = envelope["payload"]["event"]
    from bot.posting import post_once

    post_once(bot.services_client, channel=event["channel"], thread_ts=event["ts"], post_id=f"question-{question_id}-0",
              text="the answer the dead process posted")
    recover(bot.services, bot.services_client)
    bot.settle()
    assert [m["text"] for m in _answers(bot.fake, event)] == ["the answer the dead process posted"]
    assert _outcome(bot, question_id) == "answered"


def test_a_question_that_crashed_the_bot_three_times_is_given_up_with_a_message(bot):
    question_id, envelope = _left_behind(bot, "forgot my password", started=True)
    with bot.services.sessions.begin() as session:
        from storage.models import PendingQuestion

        session.get(PendingQuestion, question_id).attempts = inbox.MAX_ATTEMPTS
    recover(bot.services, bot.services_client)
    bot.settle()
    (reply,) = _answers(bot.fake, envelope["payload"]["event"])
    assert "couldn't answer" in reply["text"]
    assert _outcome(bot, question_id) == "failed"


def test_two_instances_taking_over_the_same_question_answer_it_once(bot):
    from concurrent.futures import ThreadPoolExecutor

    from storage.inbox import take_over_question, unfinished_questions

    question_id, _ = _left_behind(bot, "need access to the finance sharepoint")
    with bot.services.sessions.begin() as session:  # every instance saw the dead holder
        (seen,) = [r for r in unfinished_questions(session) if r.id == question_id]

    def take(holder: str) -> bool:
        with bot.services.sessions.begin() as session:
            return take_over_question(session, seen, holder=holder)

    with ThreadPoolExecutor(4) as pool:
        won = list(pool.map(take, [f"replica-{n}:1:x" for n in range(4)]))
    assert won.count(True) == 1


def test_holders_on_this_host_are_alive_while_their_process_runs():
    now = utcnow()
    assert inbox.holder_alive(inbox.HOLDER, now)
    assert inbox.holder_alive(f"{inbox.HOST}:{os.getppid()}:other", now)  # our parent runs
    assert not inbox.holder_alive(DEAD, now)
    assert not inbox.holder_alive(f"{inbox.HOST}:{os.getpid()}:earlier-life", now)
    assert inbox.holder_alive("other-host:12:x", now - timedelta(seconds=inbox.LEASE_S - 10))
    assert not inbox.holder_alive("other-host:12:x", now - timedelta(seconds=inbox.LEASE_S + 10))


@pytest.mark.timeout(600)
def test_questions_acknowledged_before_a_kill_9_are_answered_exactly_once_after_a_restart(tmp_path, fake):
    """The issue's crash test, short form (bench/crash_bench.py is the long one): a burst of DMs, ``kill -9``
    right after the first answer, a restart; every acknowledged question gets exactly one answer."""
    from tests.fakeslack import User

    users = [User(id=f"U0CRASH{n:03d}", name=f"crash{n}", real_name=f"Crash {n}", email=f"c{n}@example.com")
             for n in range(10)]
    for user in users:
        fake.add_user(user)
    env = {"SLACK_BOT_TOKEN": fake.bot_token, "SLACK_APP_TOKEN": fake.app_token, "SLACK_API_URL": fake.api_url,
           "ITBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'itbot.db'}", "ITBOT_RATE_LIMIT": "1000/minute",
           "ITBOT_METRICS_PORT": "0"}
    first = start_itbot("run", env=env)
    try:
        fake.wait_for_connection(timeout=300)
        texts = ["my vpn keeps dropping", "printer says offline", "forgot my password", "outlook not syncing"]
        envelopes = [fake.payloads.message(f"{texts[n % 4]} ({n})", user=users[n % 10].id) for n in range(40)]
        pushed = [fake.push(envelope) for envelope in envelopes]
        events = [e["payload"]["event"] for e in envelopes]
        fake.wait_until(lambda: any(_answers(fake, e) for e in events), timeout=60, what="the first answer")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        first.kill()
    acked = [event for envelope_id, event in zip(pushed, events) if fake.acks(envelope_id)]
    answered_before = sum(bool(_answers(fake, e)) for e in events)
    assert acked and answered_before < len(acked), "the kill came too late to test anything"

    second = start_itbot("run", env=env)
    try:
        fake.wait_until(lambda: all(_answers(fake, e) for e in acked), timeout=300,
                        what="every acknowledged question answered after the restart")
        import time

        time.sleep(2.0)  # any duplicate would arrive now
    finally:
        second.send_signal(signal.SIGTERM)
        second.communicate(timeout=60)
    counts = [len(_answers(fake, e)) for e in acked]
    assert counts == [1] * len(acked), counts


def _row(bot, question_id: int | None = None):
    """The stored question (the only one when ``question_id`` is None), detached from its session."""
    from sqlalchemy import select

    from storage.models import PendingQuestion

    with bot.services.sessions() as session:
        rows = list(session.scalars(select(PendingQuestion).order_by(PendingQuestion.id)))
        session.expunge_all()
    return rows[0] if question_id is None and len(rows) == 1 else next(r for r in rows if r.id == question_id)


def _shortcut_then_die(bot, monkeypatch, text: str) -> tuple[int, dict]:
    """"Ask IT about this" on a channel message; the process dies right after the ack, its job never run.

    Returns the stored question's id and the message asked about.
    """
    from tests.test_slack_shortcut import ask_it_about, posted_in_channel

    message = posted_in_channel(bot, text)
    with monkeypatch.context() as patch:
        lost = []
        patch.setattr(bot.services.worker, "submit", lambda job, on_error=None: lost.append(job))
        ask = ask_it_about(bot, message)
    assert ask.payload is None and not ask.late and len(lost) == 1
    row = _row(bot)
    with bot.services.sessions.begin() as session:  # the process that held it is gone
        from storage.models import PendingQuestion

        session.get(PendingQuestion, row.id).holder = DEAD
    return row.id, message


def test_a_shortcut_question_is_stored_redacted_before_the_ack_and_answered_once_after_the_process_died(
        bot, monkeypatch):
    from tests.test_slack_shortcut import dm_posts

    secret = "Zq7!shortcut-died"
    question_id, _ = _shortcut_then_die(bot, monkeypatch, f"vpn error 809 since this morning, password {secret}")
    row = _row(bot, question_id)
    assert row.finished_at is None and row.reply_thread_ts is None and not dm_posts(bot)  # nothing done yet
    assert "error 809" in row.text and "error 809" in row.quote and secret not in row.text + row.quote

    assert recover(bot.services, bot.services_client) == 1
    bot.settle()
    [quote] = dm_posts(bot)  # the quote the dead process never posted, then the answer in its thread
    assert quote["text"].startswith(":speech_balloon: You asked about this message:") and secret not in quote["text"]
    [answer] = _answers(bot.fake, {"channel": bot.fake.dm_channel(), "ts": quote["ts"]})
    assert "VPN" in answer["text"] and "Sources:" in json.dumps(answer["blocks"])
    row = _row(bot, question_id)
    assert (row.outcome, row.reply_channel, row.reply_thread_ts, row.thread_ts, row.quote) == (
        "answered", bot.fake.dm_channel(), quote["ts"], quote["ts"], None)
    assert recover(bot.services, bot.services_client) == 0
    bot.settle()
    assert len(dm_posts(bot)) == 1 and len(bot.fake.messages(bot.fake.dm_channel(), thread_ts=quote["ts"])) == 2


def test_a_shortcut_quote_posted_just_before_the_crash_is_not_posted_again(bot, monkeypatch):
    from bot.posting import post_once
    from bot.listeners.shortcuts import quoted
    from tests.test_slack_shortcut import dm_posts

    text = "printer says offline on floor 3"
    question_id, _ = _shortcut_then_die(bot, monkeypatch, text)
    with bot.services.sessions.begin() as session:  # its job had begun and posted the quote, then died
        from storage.models import PendingQuestion

        row = session.get(PendingQuestion, question_id)
        row.started_at, row.attempts = utcnow(), 1
    dm = bot.services_client.conversations_open(users=bot.fake.workspace.user.id)["channel"]["id"]
    posted = post_once(bot.services_client, channel=dm, post_id=f"question-{question_id}-quote", text=quoted(text))

    assert recover(bot.services, bot.services_client) == 1
    bot.settle()
    [quote] = dm_posts(bot)
    assert quote["ts"] == posted["ts"]
    [answer] = _answers(bot.fake, {"channel": dm, "ts": quote["ts"]})
    assert "printer" in json.dumps(answer).lower()
    assert (_row(bot, question_id).outcome, _row(bot, question_id).reply_thread_ts) == ("answered", quote["ts"])

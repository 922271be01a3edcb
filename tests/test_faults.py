"""Faults, end to end over the fake Slack: the model failing, the database locked or unreachable, Slack answering
429 or 500, the Socket Mode connection closing mid-run.

Whatever fails, each question gets exactly one reply (the answer, or a short apology with a reference), nothing
is answered twice, no raw error text reaches a user, and the bot answers normally once the fault is gone.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from llm.errors import ModelError, ModelUnavailable
from tests.slackbot import llm_mode

APOLOGY = "something went wrong on my side"
QUESTIONS = ["my vpn keeps disconnecting", "printer on floor 2 is offline", "outlook is not syncing",
             "how do I reset my password", "teams camera is black", "wifi drops every few minutes"]


def only_reply(bot, event: dict) -> dict:
    """The one message the bot left in the event's thread, once its work is done."""
    bot.final_answer(event, timeout=30)
    bot.settle()
    replies = bot.replies(event)
    assert len(replies) == 1, [r.get("text", "")[:80] for r in replies]
    return replies[0]


def hold_write_lock(path: Path, seconds: float) -> threading.Thread:
    """Another process's view: take SQLite's write lock on ``path`` for ``seconds``; returns once it is held."""
    held = threading.Event()

    def hold() -> None:
        connection = sqlite3.connect(path, isolation_level=None)
        try:
            connection.execute("BEGIN IMMEDIATE")
            held.set()
            time.sleep(seconds)
            connection.execute("ROLLBACK")
        finally:
            connection.close()

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    assert held.wait(5), "could not take the write lock"
    return thread


# -- the model -----------------------------------------------------------------------------------------------


class FailingModel:
    """A stand-in for the model service (which has its own tests): its first ``failures`` calls raise ``error``
    after ``delay_s``, later ones answer."""

    name = "failing"

    def __init__(self, error: BaseException, *, delay_s: float = 0.0, failures: int = 1) -> None:
        self.error, self.delay_s, self.failures, self.calls = error, delay_s, failures, 0

    def generate(self, messages, *, on_token=None) -> str:
        self.calls += 1
        time.sleep(self.delay_s)
        if self.calls <= self.failures:
            raise self.error
        return "1. Quit the VPN client.\n2. Start it again and sign in."


@pytest.mark.parametrize(("error", "notice"), [
    (ModelUnavailable("the model did not answer within 0.5 s"), "busy or unavailable"),
    (ModelError("generation failed: CUDA error: device-side assert triggered"), "busy or unavailable"),
], ids=["timeout", "error"])
def test_a_failing_or_timed_out_model_still_gets_the_user_the_curated_steps(make_bot, engine, error, notice):
    model = FailingModel(error, delay_s=0.5)
    bot = make_bot(engine=llm_mode(engine, model))
    _, event = bot.dm("my vpn keeps disconnecting every few minutes")
    reply = only_reply(bot, event)
    assert model.calls == 1
    assert "Sources:" in str(reply["blocks"]) and notice in str(reply["blocks"])
    assert "CUDA" not in str(reply) and "0.5 s" not in str(reply)


def test_a_model_crash_gives_one_apology_in_place_of_the_placeholder(make_bot, engine, caplog):
    bot = make_bot(engine=llm_mode(engine, FailingModel(RuntimeError("segfault in the tokenizer"))))
    _, event = bot.dm("my vpn keeps disconnecting every few minutes")
    reply = bot.fake.wait_until(lambda: [m for m in bot.replies(event) if APOLOGY in m.get("text", "")], timeout=20,
                                what="the apology")[0]
    assert only_reply(bot, event)["ts"] == reply["ts"]  # the "Looking into it" placeholder did not stay behind
    assert "segfault" not in reply["text"] and reply["text"].split("`")[1] in caplog.text
    _, later = bot.dm("my vpn keeps disconnecting every few minutes")
    assert "Start it again" in only_reply(bot, later)["text"]


# -- the database --------------------------------------------------------------------------------------------


def test_a_database_locked_for_a_few_seconds_delays_answers_but_acks_in_time_and_loses_none(make_bot):
    bot = make_bot(rate_limit="100/minute")
    fake = bot.fake
    _, first = bot.dm("hello, are you there?")
    bot.final_answer(first)
    locker = hold_write_lock(bot.database_path, seconds=4)
    envelopes, events = [], []
    for number, text in enumerate(QUESTIONS[:3]):
        envelope, event = bot.dm(text, user=f"U0LOCKED{number:02d}")
        envelopes.append(envelope)
        events.append(event)
    envelopes.append(fake.push(fake.payloads.slash_command("the printer on floor 2 is offline", user="U0SLASH001")))
    envelopes.append(fake.push(fake.payloads.slash_command("status", user="U0SLASH002")))
    for envelope in envelopes:
        assert not fake.wait_for_ack(envelope, timeout=10).late  # Slack would retry or show an error
    locker.join()
    for event in events:
        assert APOLOGY not in only_reply(bot, event).get("text", "")
    for user, expected in (("U0SLASH001", "Sources:"), ("U0SLASH002", "no open requests")):
        shown = fake.wait_until(lambda: fake.ephemeral_messages(user=user) or [
            a.payload for a in fake.acks() if a.payload and expected in str(a.payload)], timeout=20, what=user)
        assert len(shown) == 1 and expected in str(shown[0])


def test_a_database_locked_past_the_busy_timeout_gets_an_apology_and_the_bot_recovers(make_bot, monkeypatch):
    import storage.db

    monkeypatch.setattr(storage.db, "SQLITE_BUSY_TIMEOUT_MS", 300)
    bot = make_bot()
    locker = hold_write_lock(bot.database_path, seconds=2)
    _, event = bot.dm("my vpn keeps disconnecting")
    assert APOLOGY in only_reply(bot, event)["text"]
    locker.join()
    _, again = bot.dm("my vpn keeps disconnecting", thread_ts=event["ts"])
    answer = bot.final_answer(event, count=2)
    assert "Sources:" in str(answer["blocks"]) and len(bot.replies(event)) == 2


def database_switch(bot) -> threading.Event:
    """Set the returned event to make the database unreachable (as while it restarts), clear it to bring it back."""
    from sqlalchemy import event as sqlalchemy_event

    engine = bot.services.sessions.kw["bind"]
    down = threading.Event()

    def refuse(*_args, **_kwargs):
        if down.is_set():
            raise sqlite3.OperationalError("unable to open database file")

    sqlalchemy_event.listen(engine, "do_connect", refuse)
    return down


def take_down(bot, down: threading.Event) -> None:
    down.set()
    bot.services.sessions.kw["bind"].dispose()  # the pooled connections are gone too


def test_an_unreachable_database_gets_a_clear_message_and_the_bot_recovers(make_bot):
    bot = make_bot()
    fake = bot.fake
    down = database_switch(bot)
    take_down(bot, down)
    _, event = bot.dm("outlook is not syncing")
    status = fake.push(fake.payloads.slash_command("status"))
    assert not fake.wait_for_ack(status, timeout=10).late
    assert APOLOGY in only_reply(bot, event)["text"]
    fake.wait_until(lambda: [m for m in fake.ephemeral_messages() if APOLOGY in m["text"]], timeout=10,
                    what="the status apology")
    down.clear()
    _, later = bot.dm("outlook is not syncing", thread_ts=event["ts"])
    assert "Sources:" in str(bot.final_answer(event, count=2)["blocks"])


def test_an_escalation_sent_while_the_database_is_unreachable_gets_an_apology_and_can_be_sent_again(make_bot):
    from bot import blocks
    from tests.slackbot import HELPDESK

    bot = make_bot()
    fake = bot.fake
    event, answer = bot.ask("my vpn won't connect at all, error 412")
    bot.click(blocks.ACTION_HUMAN, answer)
    form = fake.wait_until(lambda: fake.views(), timeout=10, what="the escalation form")[0]
    down = database_switch(bot)
    take_down(bot, down)
    fake.push(fake.payloads.view_submission(form, values={"urgency": "high"}))
    apology = fake.wait_until(lambda: [m for m in fake.messages(fake.dm_channel()) if APOLOGY in m.get("text", "")],
                              timeout=20, what="the apology")
    assert len(apology) == 1 and not fake.messages(HELPDESK)
    down.clear()
    assert bot.escalate(event)["text"].startswith("Escalation #1")


# -- the Slack Web API -----------------------------------------------------------------------------------------


def placeholder_for(method: str, engine) -> dict:
    """Bot options under which ``method`` carries the answer: chat.update only replaces a model's placeholder
    (see :func:`without_status`)."""
    return {"engine": llm_mode(engine, FailingModel(RuntimeError("unused"), failures=0))} if method == "chat.update" else {}


def without_status(bot) -> None:
    """A workspace that refuses the thread status: a model's answer replaces a placeholder, as before agent_view."""
    bot.fake.fail_next("assistant.threads.setStatus", error="not_allowed", times=100)


@pytest.mark.parametrize(("method", "status", "times"), [
    ("chat.postMessage", 429, 1), ("chat.postMessage", 500, 2), ("chat.update", 429, 1), ("chat.update", 500, 2),
])
def test_slack_429_and_500_are_retried_into_exactly_one_answer(make_bot, engine, method, status, times):
    bot = make_bot(**placeholder_for(method, engine))
    without_status(bot)
    bot.fake.fail_next(method, status=status, times=times)
    _, event = bot.dm("my vpn keeps disconnecting")
    reply = only_reply(bot, event)
    assert "Sources:" in str(reply["blocks"])
    failed = [c for c in bot.fake.calls(method) if c.status == status]
    assert len(failed) == times


@pytest.mark.parametrize("status", [500, 503])
def test_slack_failing_after_it_stored_the_answer_does_not_post_it_twice(make_bot, status):
    bot = make_bot()
    bot.fake.fail_next("chat.postMessage", status=status, after_success=True)
    _, event = bot.dm("my vpn keeps disconnecting")
    reply = only_reply(bot, event)
    assert "Sources:" in str(reply["blocks"])
    assert [c.status for c in bot.fake.calls("chat.postMessage")] == [status]  # checked, not posted again
    assert bot.fake.calls("conversations.replies")
    _, later = bot.dm("printer on floor 2 is offline")
    assert "Sources:" in str(only_reply(bot, later)["blocks"])


def test_a_post_held_past_the_client_timeout_is_looked_up_not_posted_twice(fake):
    """Slack (or a proxy) holds the post longer than the client waits; it lands later all the same."""
    from slack_sdk import WebClient

    from bot.posting import post_once, retry_handlers

    client = WebClient(token=fake.bot_token, base_url=fake.api_url, timeout=2)  # the bot's is 15 s
    client.retry_handlers.extend(retry_handlers())
    channel = fake.dm_channel()
    fake.delay_next("chat.postMessage", 4)
    posted = post_once(client, channel=channel, text="the answer")
    time.sleep(2.5)  # a second post would have landed by now
    assert [m["text"] for m in fake.messages(channel)] == ["the answer"]
    assert posted["ts"] == fake.messages(channel)[0]["ts"]
    assert len(fake.calls("chat.postMessage")) == 1 and fake.calls("conversations.history")


def test_a_rate_limited_ephemeral_answer_is_retried(make_bot):
    bot = make_bot()
    bot.fake.fail_next("chat.postEphemeral", status=429)
    bot.fake.push(bot.fake.payloads.slash_command("my vpn keeps disconnecting"))
    bot.fake.wait_until(lambda: bot.fake.ephemeral_messages(), timeout=20, what="the answer")
    bot.settle()
    assert len(bot.fake.ephemeral_messages()) == 1 and "Sources:" in str(bot.fake.ephemeral_messages()[0])


@pytest.mark.parametrize("method", ["chat.postMessage", "chat.update"])
def test_slack_failing_past_the_retries_leaves_one_apology_and_the_next_question_works(make_bot, engine, method):
    bot = make_bot(**placeholder_for(method, engine))
    without_status(bot)
    bot.fake.fail_next(method, status=500, times=3)  # the first try and both retries
    _, event = bot.dm("my vpn keeps disconnecting")
    assert APOLOGY in only_reply(bot, event)["text"]
    _, later = bot.dm("printer on floor 2 is offline")
    assert "Sources:" in str(only_reply(bot, later)["blocks"])


# -- the Socket Mode connection ----------------------------------------------------------------------------------


def test_a_connection_closed_mid_run_loses_and_doubles_nothing(make_bot):
    bot = make_bot(rate_limit="100/minute", handler_kwargs={"ping_interval": 0.5})
    fake = bot.fake
    sent: list[tuple[str, dict]] = []

    def burst(tag: str) -> list[str]:
        envelopes = []
        for number, text in enumerate(QUESTIONS):
            envelope, event = bot.dm(f"{text} ({tag})", user=f"U0SOCK{tag}{number:02d}")
            envelopes.append(envelope)
            sent.append((envelope, event))
        return envelopes

    first = burst("A")
    fake.close_connections()  # Slack rotates its servers, answers still in flight
    fake.wait_for_connection(count=2, timeout=15)
    burst("B")
    fake.drop_connections()  # the network drops, no close frame
    fake.wait_for_connection(count=3, timeout=15)
    burst("C")
    for envelope in first:  # Slack retries what was never acked, and sometimes what was
        if not fake.acks(envelope) or envelope == first[0]:
            fake.wait_for_ack(fake.redeliver(envelope), timeout=10)
    for envelope, event in sent:
        bot.final_answer(event, timeout=30)
    time.sleep(0.5)
    for envelope, event in sent:
        assert "Sources:" in str(only_reply(bot, event).get("blocks")), event["text"]
    assert len(fake.connections()) == 3 and fake.connections()[-1].is_open


def test_a_burst_of_long_messages_on_one_connection_is_acked_and_answered_once_each(make_bot):
    """Slack pushes envelopes as they come: while the bot is busy, megabytes of them can wait in its socket.

    Slack accepts messages of up to 40,000 characters (people paste logs). slack_sdk's builtin Socket Mode client
    parsed the bytes waiting in its socket with one recursive call per 1 KB read, so a backlog of about a
    megabyte ended in RecursionError: the connection dropped and the acks of the envelopes in flight were lost.
    """
    bot = make_bot(rate_limit="10000/minute")
    fake = bot.fake
    log = "Error 0x80070005 access denied while syncing mailbox, retrying in 30 seconds. " * 500  # ~40,000 chars
    sent = [bot.dm(f"{QUESTIONS[n % len(QUESTIONS)]} #{n}\n{log}", user=f"U0BURST{n:03d}") for n in range(40)]
    for envelope, _ in sent:
        fake.wait_for_ack(envelope, timeout=60)
    for _, event in sent:
        bot.final_answer(event, timeout=60)
    bot.settle()
    assert [len(bot.replies(event)) for _, event in sent] == [1] * len(sent)
    assert len(fake.connections()) == 1, "the connection dropped under the burst"


def test_shutdown_goes_on_when_closing_the_socket_mode_connection_hangs(caplog):
    """websocket-client's close() can wait forever on a connection its monitor is still opening."""
    from bot.app import close_within

    class StuckHandler:  # the one thing that matters here: close() never returns
        def __init__(self) -> None:
            self.release = threading.Event()

        def close(self) -> None:
            self.release.wait(60)

    stuck = StuckHandler()
    began = time.monotonic()
    try:
        assert close_within(stuck, 0.5) is False
    finally:
        stuck.release.set()
    assert time.monotonic() - began < 5
    assert "did not close within" in caplog.text

    class QuickHandler:
        def close(self) -> None:
            pass

    assert close_within(QuickHandler(), 5) is True


# -- the worker queue ------------------------------------------------------------------------------------------


def test_a_full_queue_tells_the_user_instead_of_dropping_the_question(bot):
    from bot.worker import Worker

    gate = threading.Event()
    bot.services.worker = Worker(threads=1, capacity=1)
    bot.services.worker.submit(lambda: gate.wait(30))  # the only slot is busy
    try:
        _, event = bot.dm("my vpn keeps dropping")
        reply = bot.final_answer(event)
        assert "handling a lot of questions" in reply["text"] and "Talk to a human" in reply["text"]
    finally:
        gate.set()
        bot.services.worker.shutdown()

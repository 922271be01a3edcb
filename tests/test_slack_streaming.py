"""End to end, a model's answer streaming into Slack: the thread status, Slack's native streaming message
(chat.startStream / appendStream / stopStream), and the edited message it falls back to.

The real Bolt app over a real Socket Mode WebSocket, against the local fake Slack; a scripted model stands in
for the model service (which has its own tests) so that the timing is known.
"""

from __future__ import annotations

import json
import threading
import time

from bot import blocks
from tests.slackbot import llm_mode
from tests.test_slack_e2e import ScriptedModel

STEPS = ["1. Open the VPN client. ", "2. Sign out and in again. ", "3. Restart the laptop. ",
         "4. Still stuck? Talk to a human."]


def final(bot, event) -> dict:
    """The bot's one reply in the thread, once it carries the final answer's blocks."""
    bot.fake.wait_until(lambda: "Sources:" in json.dumps((bot.replies(event) or [{}])[0].get("blocks") or []),
                        timeout=20, what="the final answer")
    [answer] = bot.replies(event)
    return answer


def test_in_a_dm_the_status_shows_at_once_then_the_answer_streams_natively_and_becomes_the_final_answer(make_bot,
                                                                                                         engine):
    bot = make_bot(engine=llm_mode(engine, ScriptedModel(STEPS, delay_s=0.3)))
    fake = bot.fake
    envelope_id, event = bot.dm("my vpn keeps disconnecting every few minutes")
    status = fake.wait_for_call("assistant.threads.setStatus", timeout=10)
    assert status.at - fake.pushed(envelope_id).at < 1.0  # the target: a sign of work within 1 s
    assert fake.thread_status(event["channel"], event["ts"]) == status.params["status"]

    start = fake.wait_for_call("chat.startStream", timeout=10)
    assert start.at > status.at and start.params["thread_ts"] == event["ts"]
    assert start.params["markdown_text"].startswith("1. Open the VPN client.")
    assert (start.params["recipient_user_id"], start.params["recipient_team_id"]) == (event["user"],
                                                                                     fake.workspace.team_id)
    answer = final(bot, event)
    assert answer["ts"] == start.response["ts"]  # the streamed message became the answer: one reply
    stream = fake.stream(event["channel"], answer["ts"])
    assert stream["stopped"] and stream["appends"] >= 1
    appended = "".join(c.params["markdown_text"] for c in fake.calls("chat.appendStream"))
    assert "2. Sign out and in again." in start.params["markdown_text"] + appended
    stop = fake.calls("chat.stopStream")[0]
    update = [c for c in fake.calls("chat.update") if c.params["ts"] == answer["ts"]][-1]
    assert stop.at < update.at  # stopped, then replaced by the final blocks
    rendered = json.dumps(answer["blocks"])
    assert blocks.ACTION_FEEDBACK in rendered and blocks.ACTION_HUMAN in rendered and "Sources:" in rendered
    assert not fake.calls("chat.postMessage")  # no "Looking into it…", no extra preview message
    assert fake.thread_status(event["channel"], event["ts"]) == ""  # Slack cleared it when the bot replied
    assert not fake.warnings


def test_appends_are_throttled_inside_slacks_limits(make_bot, engine):
    words = [f"word{i} " for i in range(60)]  # 60 pieces in about 1.2 s
    bot = make_bot(engine=llm_mode(engine, ScriptedModel(["1. Restart the VPN client. "] + words, delay_s=0.02)))
    _, event = bot.dm("my vpn keeps disconnecting every few minutes")
    final(bot, event)
    assert len(bot.fake.calls("chat.appendStream")) <= 4  # at most one append per 0.5 s, not one per piece


def test_in_a_channel_the_eyes_show_at_once_and_the_answer_streams_to_the_person_who_asked(make_bot, engine):
    bot = make_bot(engine=llm_mode(engine, ScriptedModel(STEPS, delay_s=0.2)))
    fake = bot.fake
    envelope = fake.payloads.app_mention("my vpn keeps disconnecting every few minutes", channel="C0GENERAL")
    fake.push(envelope)
    question = envelope["payload"]["event"]
    seen = fake.wait_for_call("reactions.add", timeout=10)
    assert seen.at - fake.pushed(envelope["envelope_id"]).at < 1.0
    start = fake.wait_for_call("chat.startStream", timeout=10)
    assert start.ok and start.params["recipient_user_id"] == question["user"]  # Slack requires it in channels
    answer = final(bot, question)
    assert answer["ts"] == start.response["ts"] and not fake.calls("chat.postMessage")


def test_a_workspace_that_refuses_native_streaming_gets_a_message_edited_as_the_answer_grows(make_bot, engine):
    bot = make_bot(engine=llm_mode(engine, ScriptedModel(STEPS, delay_s=0.3)))
    fake = bot.fake
    fake.fail_next("chat.startStream", error="not_allowed_token_type")
    _, event = bot.dm("my vpn keeps disconnecting every few minutes")
    preview = fake.wait_for_call("chat.postMessage", timeout=10)
    assert preview.params["text"].startswith("1. Open the VPN client.") and preview.params["text"].endswith("…")
    answer = final(bot, event)
    assert answer["ts"] == preview.response["ts"]  # the preview became the answer
    assert [c.error for c in fake.calls("chat.startStream")] == ["not_allowed_token_type"]
    assert not fake.calls("chat.appendStream") and not fake.calls("chat.stopStream")


def test_a_stream_slack_ended_early_goes_on_as_an_edited_message_and_still_gets_the_final_answer(make_bot, engine):
    bot = make_bot(engine=llm_mode(engine, ScriptedModel(STEPS, delay_s=0.6)))
    fake = bot.fake
    _, event = bot.dm("my vpn keeps disconnecting every few minutes")
    start = fake.wait_for_call("chat.startStream", timeout=10)
    fake.end_streams()  # as Slack does after about five minutes
    answer = final(bot, event)
    assert answer["ts"] == start.response["ts"]
    assert "message_not_in_streaming_state" in [c.error for c in fake.calls("chat.appendStream")]
    edits = [c for c in fake.calls("chat.update") if c.params["ts"] == answer["ts"]]
    assert len(edits) >= 2 and edits[0].params["text"].endswith("…")  # the preview went on, then the answer
    assert "3. Restart the laptop." in answer["text"] or "Restart the laptop" in json.dumps(answer["blocks"])


class ProcessDied(BaseException):
    """Ends a generation the way a killed process does: no ``except Exception`` cleans up after it."""


class DyingModel:
    """Streams the first answer's first pieces, then hangs (the process died there, as far as Slack can tell)
    until ``release`` is set; every later answer streams in full."""

    name = "dying"

    def __init__(self, pieces, delay_s=0.2, *, died_after=2):
        self.model, self.died_after = ScriptedModel(pieces, delay_s), died_after
        self.died, self.release = threading.Event(), threading.Event()
        self._first = threading.Lock()

    def generate(self, messages, *, on_token=None):
        if not self._first.acquire(blocking=False):
            return self.model.generate(messages, on_token=on_token)
        for piece in self.model.pieces[:self.died_after]:
            time.sleep(self.model.delay_s)
            on_token(piece)
        self.died.set()
        self.release.wait(timeout=120)
        raise ProcessDied()


def _question_row(bot):
    from sqlalchemy import select

    from storage.models import PendingQuestion

    with bot.services.sessions() as session:
        [row] = session.scalars(select(PendingQuestion))
        session.expunge(row)
    return row


def test_an_answer_half_streamed_when_the_process_died_is_removed_and_answered_once_after_recovery(make_bot, engine,
                                                                                                   monkeypatch):
    from bot.listeners import intake
    from storage.models import PendingQuestion
    from tests.test_durable_intake import DEAD

    model = DyingModel(STEPS)
    bot = make_bot(engine=llm_mode(engine, model))
    fake = bot.fake
    _, event = bot.dm("my vpn keeps disconnecting every few minutes")
    start = fake.wait_for_call("chat.startStream", timeout=10)
    assert model.died.wait(timeout=10)
    partial = fake.message(event["channel"], start.response["ts"])
    assert partial["text"].startswith("1. Open the VPN client.") and fake.stream(event["channel"], partial["ts"])
    row = _question_row(bot)
    assert row.streamed_ts == partial["ts"] and row.finished_at is None  # recorded as soon as the stream started

    with bot.services.sessions.begin() as session:  # the process is gone: another one takes its questions over
        session.get(PendingQuestion, row.id).holder = DEAD
    assert intake.recover(bot.services, bot.services_client) == 1
    answer = bot.final_answer(event)
    assert fake.message(event["channel"], partial["ts"]) is None  # the half-written answer is gone
    assert [m["ts"] for m in bot.replies(event)] == [answer["ts"]] and answer["ts"] != partial["ts"]
    assert "Sources:" in json.dumps(answer["blocks"]) and "Restart the laptop" in json.dumps(answer)
    assert [c.params["ts"] for c in fake.calls("chat.delete")] == [partial["ts"]]
    fake.wait_until(lambda: _question_row(bot).outcome == "answered", timeout=10, what="the question finished")

    monkeypatch.setattr(intake, "apologise", lambda **_: None)  # the dead process says nothing more
    model.release.set()
    bot.settle()
    assert [m["ts"] for m in bot.replies(event)] == [answer["ts"]]


def test_a_database_fault_recording_the_stream_does_not_stop_the_answer(make_bot, engine, monkeypatch, caplog):
    from sqlalchemy.exc import OperationalError

    from bot import inbox

    def refuse(*_args, **_kwargs):
        raise OperationalError("UPDATE pending_questions", {}, Exception("database is locked"))

    monkeypatch.setattr(inbox, "stream_started", refuse)
    bot = make_bot(engine=llm_mode(engine, ScriptedModel(STEPS, delay_s=0.1)))
    _, event = bot.dm("my vpn keeps disconnecting every few minutes")
    start = bot.fake.wait_for_call("chat.startStream", timeout=10)
    answer = final(bot, event)
    assert answer["ts"] == start.response["ts"] and "Sources:" in json.dumps(answer["blocks"])
    assert any("could not record the streamed message" in r.getMessage() for r in caplog.records)
    bot.settle()
    assert _question_row(bot).outcome == "answered" and _question_row(bot).streamed_ts is None


def test_a_preview_posted_where_slack_refused_the_stream_is_removed_after_the_process_died(make_bot, engine,
                                                                                         monkeypatch):
    from bot.listeners import intake
    from storage.models import PendingQuestion
    from tests.test_durable_intake import DEAD

    model = DyingModel(STEPS)
    bot = make_bot(engine=llm_mode(engine, model))
    fake = bot.fake
    fake.fail_next("chat.startStream", error="not_allowed_token_type")
    _, event = bot.dm("my vpn keeps disconnecting every few minutes")
    preview = fake.wait_for_call("chat.postMessage", timeout=10)  # marked <post id>-placeholder: found again
    assert model.died.wait(timeout=10) and fake.message(event["channel"], preview.response["ts"])
    row = _question_row(bot)
    assert row.streamed_ts is None
    with bot.services.sessions.begin() as session:
        session.get(PendingQuestion, row.id).holder = DEAD
    assert intake.recover(bot.services, bot.services_client) == 1
    answer = bot.final_answer(event)
    assert fake.message(event["channel"], preview.response["ts"]) is None
    assert [m["ts"] for m in bot.replies(event)] == [answer["ts"]]
    fake.wait_until(lambda: _question_row(bot).outcome == "answered", timeout=10, what="the question finished")
    monkeypatch.setattr(intake, "apologise", lambda **_: None)
    model.release.set()
    bot.settle()

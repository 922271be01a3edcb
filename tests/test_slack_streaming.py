"""End to end, a model's answer streaming into Slack: the thread status, Slack's native streaming message
(chat.startStream / appendStream / stopStream), and the edited message it falls back to.

The real Bolt app over a real Socket Mode WebSocket, against the local fake Slack; a scripted model stands in
for the model service (which has its own tests) so that the timing is known.
"""

from __future__ import annotations

import json

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

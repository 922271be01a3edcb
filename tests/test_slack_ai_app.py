"""End to end, Slack's AI-app surfaces: the Messages tab, the thread status, reactions, feedback buttons.

The real Bolt app over a real Socket Mode WebSocket, against the local fake Slack installed from manifest.yml.
"""

from __future__ import annotations

import json
import time

from sqlalchemy import select

from bot import blocks
from bot.suggestions import DEFAULT_TOPICS, QUESTIONS
from storage.models import Feedback
from storage.stats import operations_stats
from tests.slackbot import MALLORY, llm_mode
from tests.test_slack_e2e import ScriptedModel


def open_messages_tab(bot, user=None) -> None:
    envelope = bot.fake.push(bot.fake.payloads.app_home_opened(tab="messages", **({"user": user} if user else {})))
    bot.fake.wait_for_ack(envelope)


def feedback(bot) -> list[tuple[int, str, str]]:
    with bot.services.sessions() as session:
        return [(f.message_id, f.user_id, str(f.kind)) for f in session.scalars(select(Feedback).order_by(Feedback.id))]


# -- the Messages tab -------------------------------------------------------------------------------------------


def test_opening_the_messages_tab_greets_me_once_and_suggests_what_colleagues_ask_most(bot):
    fake, dm = bot.fake, bot.fake.dm_channel()
    open_messages_tab(bot)
    shown = fake.wait_until(lambda: fake.suggested_prompts(dm), timeout=10, what="the suggested prompts")
    assert [p["message"] for p in shown["prompts"]] == [QUESTIONS[t] for t in DEFAULT_TOPICS]  # nothing asked yet
    assert shown["title"] == blocks.PROMPTS_TITLE
    [greeting] = fake.messages(dm)
    assert "Hi <@U0FAKEUSR1>" in greeting["text"] and "Talk to a human" in greeting["text"]
    call = fake.calls("assistant.threads.setSuggestedPrompts")[0]
    assert "thread_ts" not in call.params and call.at > fake.calls("chat.postMessage")[0].at  # greeting first

    for question in ("the printer on floor 2 is offline", "printer says paper jam", "my vpn won't connect"):
        bot.ask(question, user=MALLORY.id)
    open_messages_tab(bot)
    fake.wait_for_call("assistant.threads.setSuggestedPrompts", count=2, timeout=10)
    assert [p["title"] for p in fake.suggested_prompts(dm)["prompts"]] == [
        "Printers", "VPN", "Password reset", "MFA / authenticator"]
    assert len(fake.messages(dm)) == 1  # greeted once
    assert not fake.warnings


def test_a_greeting_slack_refused_is_posted_at_the_next_visit(bot):
    fake, dm = bot.fake, bot.fake.dm_channel()
    fake.fail_next("chat.postMessage", error="fatal_error")
    open_messages_tab(bot)
    fake.wait_for_call("assistant.threads.setSuggestedPrompts", timeout=10)  # the visit is over; prompts still set
    assert fake.messages(dm) == []
    open_messages_tab(bot)
    fake.wait_until(lambda: fake.messages(dm), timeout=10, what="the greeting")
    [greeting] = fake.messages(dm)
    assert "Hi <@U0FAKEUSR1>" in greeting["text"]


def test_the_home_tab_and_a_refused_prompt_call_leave_the_conversation_alone(bot):
    fake = bot.fake
    fake.push(fake.payloads.app_home_opened(tab="home"))
    fake.fail_next("assistant.threads.setSuggestedPrompts", error="not_allowed")
    open_messages_tab(bot)
    fake.wait_for_call("assistant.threads.setSuggestedPrompts", timeout=10)
    bot.settle()
    time.sleep(0.3)
    assert len(fake.calls("assistant.threads.setSuggestedPrompts")) == 1  # only for the Messages tab
    assert [m["text"][:6] for m in fake.messages(fake.dm_channel())] == [":wave:"]  # no apology for the refusal


# -- working and solved -----------------------------------------------------------------------------------------


def test_a_question_asked_in_a_channel_gets_eyes_then_a_check_mark_in_their_place_when_i_mark_it_solved(bot):
    fake = bot.fake
    envelope = fake.payloads.app_mention("my outlook keeps asking for my password", channel="C0GENERAL")
    fake.push(envelope)
    question = envelope["payload"]["event"]
    answer = bot.final_answer(question)
    assert fake.reactions("C0GENERAL", question["ts"]) == ["eyes"]
    assert fake.calls("reactions.add")[0].at < fake.calls("chat.postMessage")[0].at  # seen before answered

    bot.click(blocks.ACTION_FEEDBACK, answer, MALLORY.id, feedback="positive")  # not Mallory's question
    fake.wait_until(lambda: fake.ephemeral_messages(user=MALLORY.id), timeout=10, what="the refusal")
    assert fake.reactions("C0GENERAL", question["ts"]) == ["eyes"] and not feedback(bot)

    bot.click(blocks.ACTION_FEEDBACK, answer, feedback="positive")
    fake.wait_until(lambda: fake.reactions("C0GENERAL", question["ts"]) == ["white_check_mark"], timeout=10,
                    what="the check mark in place of the eyes")
    assert [kind for _, _, kind in feedback(bot)] == ["solved"]
    bot.click(blocks.ACTION_FEEDBACK, answer, feedback="positive")  # pressed again: no error, still one verdict
    fake.wait_for_call("reactions.add", lambda c: c.error == "already_reacted", timeout=10)
    bot.settle()
    assert len(feedback(bot)) == 1 and not [m for m in fake.messages("C0GENERAL", question["ts"]) if "reference"
                                            in m.get("text", "")]


def test_a_dm_marked_solved_is_counted_without_a_reaction(bot):
    event, answer = bot.ask("how do I connect to the office wifi")
    bot.click(blocks.ACTION_FEEDBACK, answer, feedback="positive")
    bot.fake.wait_until(lambda: feedback(bot), timeout=10, what="the stored feedback")
    bot.settle()
    assert not bot.fake.calls("reactions.add") and bot.fake.reactions(event["channel"], event["ts"]) == []
    assert [kind for _, _, kind in feedback(bot)] == ["solved"]


def test_thumbs_down_is_stored_and_offers_the_escalation(bot):
    fake = bot.fake
    event, answer = bot.ask("my vpn won't connect at all, error 412")
    bot.click(blocks.ACTION_FEEDBACK, answer, feedback="negative")
    offer = fake.wait_until(lambda: [m for m in fake.ephemeral_messages(user=fake.workspace.user.id)
                                     if blocks.ACTION_HUMAN in json.dumps(m.get("blocks"))], timeout=10,
                            what="the offer of a person")[0]
    assert offer["thread_ts"] == event["ts"]
    assert [(m, kind) for m, _, kind in feedback(bot)] == [(json.loads(
        answer["blocks"][-1]["elements"][0]["negative_button"]["value"])["m"], "not_helpful")]
    with bot.services.sessions() as session:  # counted in the nightly digest as the old button was
        stats = operations_stats(session)
    assert (stats.feedback_up, stats.feedback_down) == (0, 1) and "error 412" in stats.not_helpful_questions[0]
    bot.click(blocks.ACTION_HUMAN, offer)  # from the ephemeral offer: the escalation form opens
    view = fake.wait_until(lambda: fake.views(), timeout=10, what="the escalation form")[0]
    assert view["callback_id"] == blocks.VIEW_ESCALATE and "error 412" in json.dumps(view["blocks"])


def test_the_old_solved_button_on_answers_posted_before_the_upgrade_still_counts(bot):
    event, answer = bot.ask("printer on floor 2 is offline")
    message_id = json.loads(answer["blocks"][-1]["elements"][0]["positive_button"]["value"])["m"]
    value = json.dumps({"m": message_id, "c": 1})
    old = {**answer, "blocks": [{"type": "actions", "block_id": "old", "elements": [
        {"type": "button", "action_id": blocks.ACTION_SOLVED, "text": {"type": "plain_text", "text": "Solved"},
         "value": value}]}]}
    bot.click(blocks.ACTION_SOLVED, old)
    bot.fake.wait_until(lambda: feedback(bot), timeout=10, what="the stored feedback")
    assert feedback(bot)[0][2] == "solved"


def test_a_relayed_message_clears_the_thread_status_no_reply_follows_in_the_thread(make_bot, engine):
    bot = make_bot(engine=llm_mode(engine, ScriptedModel(["1. Restart the VPN client."], delay_s=0.05)))
    fake = bot.fake
    event, _ = bot.ask("my vpn won't connect at all, error 412")
    post = bot.escalate(event)
    bot.click(blocks.ACTION_CLAIM, post, "U0AGENT001", channel="C0HELPDESK")
    fake.wait_until(lambda: any("picked up your request" in m.get("text", "") for m in bot.thread(event)),
                    timeout=10, what="the claim")
    _, follow = bot.dm("still broken", thread_ts=event["ts"])
    fake.wait_until(lambda: [m for m in fake.messages("C0HELPDESK", thread_ts=post["ts"]) if "still broken" in
                             m.get("text", "")], timeout=10, what="the relay")
    fake.wait_until(lambda: fake.thread_status(event["channel"], event["ts"]) == "", timeout=10,
                    what="the status cleared")
    cleared = [c for c in fake.calls("assistant.threads.setStatus") if c.params["status"] == ""]
    assert len(cleared) == 1 and cleared[0].params["thread_ts"] == event["ts"]

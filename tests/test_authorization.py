"""Authorization over Slack: only agents claim and resolve; no user reaches another user's conversation.

Everything goes through the real Bolt app and the fake Slack. A "forged" click is a ``block_actions`` payload a
user could send for a message that is not theirs (Slack clients can replay any button value), so the bot must
check ownership itself.
"""

from __future__ import annotations

import json
import time

from sqlalchemy import func, select

from bot import blocks
from storage import repository as repo
from storage.models import Conversation, Escalation, Feedback, KbDraft, Message
from tests.fakeslack import User
from tests.slackbot import AGENT, HELPDESK, MALLORY

ALICE = "U0FAKEUSR1"  # the fake workspace's default user
EVE = User(id="U0EVE00001", name="eve", real_name="Eve", email="eve@example.com")


def refusals(bot, user: str) -> list[str]:
    return [m["text"] for m in bot.fake.ephemeral_messages(user=user)]


def escalation(bot, escalation_id: int) -> Escalation:
    with bot.services.sessions() as session:
        return session.get(Escalation, escalation_id)


def count(bot, model, *where) -> int:
    with bot.services.sessions() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def settle(bot) -> None:
    """Wait until the worker is idle, and a little longer for listeners that run on Bolt's own threads."""
    bot.settle()
    time.sleep(0.5)


def test_only_agents_can_claim_resolve_or_save_a_kb_draft(bot):
    fake = bot.fake
    event, _ = bot.ask("my vpn won't connect at all, error 412")
    post = bot.escalate(event)
    bot.click(blocks.ACTION_CLAIM, post, MALLORY.id, channel=HELPDESK)
    bot.click(blocks.ACTION_RESOLVE, post, MALLORY.id, channel=HELPDESK)
    fake.wait_until(lambda: len(refusals(bot, MALLORY.id)) == 2, timeout=10, what="two refusals")
    assert all("Only helpdesk agents" in text for text in refusals(bot, MALLORY.id))
    assert (escalation(bot, 1).status, escalation(bot, 1).claimed_by) == ("open", None)
    assert "Claimed" not in json.dumps(fake.message(HELPDESK, post["ts"])["blocks"])

    bot.click(blocks.ACTION_CLAIM, post, AGENT.id, channel=HELPDESK)
    fake.wait_until(lambda: escalation(bot, 1).status == "claimed", timeout=10, what="the agent's claim")
    claimed = fake.message(HELPDESK, post["ts"])
    bot.click(blocks.ACTION_RESOLVE, claimed, MALLORY.id, channel=HELPDESK)
    fake.wait_until(lambda: len(refusals(bot, MALLORY.id)) == 3, timeout=10, what="a third refusal")
    assert (escalation(bot, 1).status, escalation(bot, 1).claimed_by) == ("claimed", AGENT.id)

    fake.push(fake.payloads.message("Reinstall the VPN profile from the portal", user=AGENT.id, channel=HELPDESK,
                                    thread_ts=post["ts"]))
    fake.wait_until(lambda: any("Reinstall the VPN" in m.get("text", "") for m in bot.thread(event)), timeout=10,
                    what="the agent's reply relayed")
    bot.click(blocks.ACTION_RESOLVE, claimed, AGENT.id, channel=HELPDESK)
    resolved = fake.wait_until(lambda: blocks.ACTION_KB_DRAFT in json.dumps(fake.message(HELPDESK, post["ts"]))
                               and fake.message(HELPDESK, post["ts"]), timeout=10, what="the resolved post")
    bot.click(blocks.ACTION_KB_DRAFT, resolved, MALLORY.id, channel=HELPDESK)
    fake.wait_until(lambda: len(refusals(bot, MALLORY.id)) == 4, timeout=10, what="a fourth refusal")
    settle(bot)
    assert count(bot, KbDraft) == 0
    assert escalation(bot, 1).resolved_by == AGENT.id


def test_status_lists_only_the_callers_own_escalations(bot):
    fake = bot.fake
    alice_event, _ = bot.ask("my laptop won't boot at all")
    bot.escalate(alice_event, details="alice-only detail: the blue laptop")
    mallory_event, _ = bot.ask("outlook crashes on start", user=MALLORY.id)
    bot.escalate(mallory_event, user=MALLORY.id, details="mallory-only detail: the red phone")
    bot.click(blocks.ACTION_CLAIM, fake.messages(HELPDESK)[0], AGENT.id, channel=HELPDESK)  # claimed still counts
    fake.wait_until(lambda: escalation(bot, 1).status == "claimed", timeout=10, what="the claim")

    def status(user: str) -> str:
        fake.push(fake.payloads.slash_command("status", user=user))
        return fake.wait_until(lambda: [m["text"] for m in fake.ephemeral_messages(user=user)
                                        if "open requests" in m["text"]], timeout=10, what="the status")[0]

    alice, mallory, eve = status(ALICE), status(MALLORY.id), status(EVE.id)
    assert "#1" in alice and "laptop won't boot" in alice and "#2" not in alice and "utlook" not in alice
    assert "#2" in mallory and "outlook crashes" in mallory and "#1" not in mallory and "laptop" not in mallory
    assert "no open requests" in eve and "#" not in eve


def test_an_agents_reply_reaches_only_the_user_whose_escalation_it_is(bot):
    fake = bot.fake
    fake.add_user(EVE)
    alice_event, _ = bot.ask("teams has no sound in meetings")
    alice_post = bot.escalate(alice_event)
    mallory_event, _ = bot.ask("my printer says offline", user=MALLORY.id)
    mallory_post = bot.escalate(mallory_event, user=MALLORY.id)
    for post in (alice_post, mallory_post):
        bot.click(blocks.ACTION_CLAIM, post, AGENT.id, channel=HELPDESK)
    fake.wait_until(lambda: escalation(bot, 2).status == "claimed" and escalation(bot, 1).status == "claimed",
                    timeout=10, what="both claims")

    fake.push(fake.payloads.message("for alice only: restart Teams", user=AGENT.id, channel=HELPDESK,
                                    thread_ts=alice_post["ts"]))
    fake.push(fake.payloads.message("eve was here <!channel>", user=EVE.id, channel=HELPDESK,
                                    thread_ts=alice_post["ts"]))
    fake.push(fake.payloads.message("for mallory only: power-cycle the printer", user=AGENT.id, channel=HELPDESK,
                                    thread_ts=mallory_post["ts"]))
    bot.dm("still no sound", user=ALICE, thread_ts=alice_event["ts"])
    fake.wait_until(lambda: any("for mallory only" in m.get("text", "") for m in bot.thread(mallory_event)),
                    timeout=10, what="the relay to mallory")
    fake.wait_until(lambda: any("still no sound" in m.get("text", "")
                                for m in fake.messages(HELPDESK, thread_ts=alice_post["ts"])),
                    timeout=10, what="alice's message relayed to her escalation")
    settle(bot)

    def posted(text: str) -> list[str]:
        return [call.params["channel"] for call in fake.calls("chat.postMessage") if text in call.params["text"]]

    assert posted("for alice only") == [fake.dm_channel(ALICE)]
    assert posted("for mallory only") == [fake.dm_channel(MALLORY.id)]
    assert posted("eve was here") == []  # not an agent: nothing is relayed
    assert posted("still no sound") == [HELPDESK]
    relayed = [m for m in fake.messages(HELPDESK, thread_ts=alice_post["ts"]) if "still no sound" in m["text"]]
    assert len(relayed) == 1 and not any("still no sound" in m.get("text", "")
                                         for m in fake.messages(HELPDESK, thread_ts=mallory_post["ts"]))


def test_forged_clicks_cannot_touch_someone_elses_conversation(bot):
    """Regression: "Talk to a human" with another conversation's id opened a form showing that conversation's
    transcript, 👍 / 👎 stored feedback on it and a topic button re-asked its question."""
    fake = bot.fake
    alice_event, alice_answer = bot.ask("how do I connect to the office wifi")
    mallory_event, _ = bot.ask("it's broken again, nothing works", user=MALLORY.id)  # a clarify with topics
    alice_ids = json.loads(next(e["value"] for b in alice_answer["blocks"] if b["type"] == "actions"
                                for e in b["elements"] if e["action_id"] == blocks.ACTION_HUMAN))
    with bot.services.sessions() as session:
        alice_messages = session.scalar(select(func.count()).select_from(Message)
                                        .where(Message.conversation_id == alice_ids["c"]))
    forged = json.dumps(alice_ids)
    mallory_buttons = bot.button_message(mallory_event, blocks.ACTION_HUMAN)

    # Mallory clicks Alice's buttons (as a replayed payload would), and her own with Alice's ids in the value
    bot.click(blocks.ACTION_FEEDBACK, alice_answer, MALLORY.id, feedback="positive")
    bot.click(blocks.ACTION_FEEDBACK, alice_answer, MALLORY.id, feedback="negative")
    bot.click(blocks.ACTION_HUMAN, alice_answer, MALLORY.id)
    bot.click(blocks.ACTION_HUMAN, mallory_buttons, MALLORY.id, value=forged)
    bot.click(f"{blocks.ACTION_TOPIC}_0", mallory_buttons, MALLORY.id,
          value=json.dumps({"c": alice_ids["c"], "i": "vpn"}))
    view = blocks.escalation_modal(conversation_id=alice_ids["c"], summary="forged")
    fake.push(fake.payloads.view_submission({**view, "id": "V0FORGED01"}, values={"urgency": "critical"},
                                            user=MALLORY.id))
    fake.wait_until(lambda: len(refusals(bot, MALLORY.id)) >= 5, timeout=10, what="the refusals")
    settle(bot)

    assert count(bot, Feedback) == 0
    assert count(bot, Escalation) == 0 and not fake.messages(HELPDESK)
    assert not fake.calls("views.open")  # no form showing Alice's conversation
    assert count(bot, Message, Message.conversation_id == alice_ids["c"]) == alice_messages
    assert len(bot.replies(alice_event)) == 1
    shown_to_mallory = json.dumps([fake.ephemeral_messages(user=MALLORY.id), bot.thread(mallory_event)])
    assert "office wifi" not in shown_to_mallory.lower() and "Wi-Fi" not in shown_to_mallory


def test_a_forged_rating_is_ignored(bot):
    fake = bot.fake
    event, _ = bot.ask("my vpn won't connect at all, error 412")
    post = bot.escalate(event)
    bot.click(blocks.ACTION_RESOLVE, post, AGENT.id, channel=HELPDESK)
    rating = fake.wait_until(lambda: [m for m in bot.thread(event) if "How did we do" in m.get("text", "")],
                             timeout=10, what="the rating prompt")[0]
    bot.click(f"{blocks.ACTION_RATE}_1", rating, MALLORY.id)
    settle(bot)
    assert escalation(bot, 1).satisfaction is None
    assert "How did we do" in fake.message(rating["channel"], rating["ts"])["text"]
    bot.click(f"{blocks.ACTION_RATE}_5", rating, ALICE)
    fake.wait_until(lambda: escalation(bot, 1).satisfaction == 5, timeout=10, what="alice's own rating")


def test_export_user_holds_only_that_users_data(bot):
    fake = bot.fake
    alice_event, _ = bot.ask("alice asks: outlook is not syncing")
    post = bot.escalate(alice_event, details="alice detail")
    bot.click(blocks.ACTION_CLAIM, post, AGENT.id, channel=HELPDESK)
    fake.wait_until(lambda: escalation(bot, 1).status == "claimed", timeout=10, what="the claim")
    fake.push(fake.payloads.message("agent to alice: rebuild the profile", user=AGENT.id, channel=HELPDESK,
                                    thread_ts=post["ts"]))
    mallory_event, mallory_answer = bot.ask("mallory asks: printer on floor 2 is offline", user=MALLORY.id)
    bot.click(blocks.ACTION_FEEDBACK, mallory_answer, MALLORY.id, feedback="positive")
    fake.wait_until(lambda: count(bot, Feedback) == 1, timeout=10, what="mallory's feedback")
    fake.wait_until(lambda: any("rebuild the profile" in m.get("text", "") for m in bot.thread(alice_event)),
                    timeout=10, what="the agent's relay")
    settle(bot)

    with bot.services.sessions() as session:
        alice = json.dumps(repo.export_user(session, ALICE))
        mallory = json.dumps(repo.export_user(session, MALLORY.id))
        agent = repo.export_user(session, AGENT.id)
        owners = {c.user_id for c in session.scalars(select(Conversation))}
    assert owners == {ALICE, MALLORY.id}
    assert "alice asks" in alice and "rebuild the profile" in alice and "alice detail" in alice
    assert "mallory" not in alice.lower() and MALLORY.id not in alice
    assert "mallory asks" in mallory and "solved" in mallory
    assert "alice" not in mallory.lower() and ALICE not in mallory and "outlook" not in mallory.lower()
    assert agent["conversations"] == [] and [e["id"] for e in agent["escalations_handled"]] == [1]
    assert "alice" not in json.dumps(agent).lower()


def test_a_claim_clicked_before_the_posts_reference_is_stored_still_updates_the_post(bot):
    event, _ = bot.ask("my vpn won't connect at all, error 412")
    post = bot.escalate(event)
    with bot.services.sessions.begin() as session:  # the gap between posting and storing the post's ts
        stored = session.get(Escalation, 1)
        stored.channel_id = stored.channel_message_ts = None
    bot.click(blocks.ACTION_CLAIM, post, AGENT.id, channel=HELPDESK)
    bot.fake.wait_until(lambda: "Claimed by" in json.dumps(bot.fake.message(HELPDESK, post["ts"])["blocks"]),
                        timeout=10, what="the post updated")
    assert escalation(bot, 1).status == "claimed"


def test_a_colleague_mentioning_the_bot_in_my_channel_thread_gets_a_conversation_of_their_own(bot):
    fake = bot.fake
    mine = fake.payloads.app_mention("my outlook keeps asking for my password", channel="C0GENERAL")
    fake.push(mine)
    root = mine["payload"]["event"]
    bot.final_answer(root)
    theirs = fake.payloads.app_mention("and my printer is offline", user=MALLORY.id, channel="C0GENERAL",
                                       thread_ts=root["ts"])
    fake.push(theirs)
    answer = bot.final_answer(root, count=2)
    assert answer["thread_ts"] == root["ts"]  # answered in the same Slack thread
    with bot.services.sessions() as session:
        owners = {c.user_id: c for c in session.scalars(select(Conversation))}
        assert set(owners) == {ALICE, MALLORY.id}
        alice_texts = [m.text for m in session.scalars(select(Message).where(
            Message.conversation_id == owners[ALICE].id))]
    assert not any("printer" in text for text in alice_texts)
    with bot.services.sessions() as session:
        assert "printer" not in json.dumps(repo.export_user(session, ALICE), default=str)

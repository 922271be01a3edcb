"""End to end, the message shortcut "Ask IT about this": a message in a channel becomes a question in my DM.

The real Bolt app over a real Socket Mode WebSocket, against the local fake Slack installed from manifest.yml
(its ``features.shortcuts`` and scopes): the fake sends Slack's ``message_action`` payload.
"""

from __future__ import annotations

import json

from sqlalchemy import select

from bot import blocks
from bot.listeners.shortcuts import ASK_IT, NO_TEXT
from storage.models import Conversation, Message, PendingQuestion
from tests.fakeslack import SLACK_ACK_DEADLINE_S
from tests.slackbot import MALLORY

CHANNEL = "C0GENERAL"


def posted_in_channel(bot, text: str, **kwargs) -> dict:
    """Mallory posts ``text`` in #general; returns the message as members see it."""
    envelope = bot.fake.payloads.message(text, user=MALLORY.id, channel=CHANNEL, **kwargs)
    bot.fake.wait_for_ack(bot.fake.push(envelope))
    return bot.fake.message(CHANNEL, envelope["payload"]["event"]["ts"])


def ask_it_about(bot, message: dict):
    """The default user picks "Ask IT about this" on ``message``; returns the ack."""
    return bot.fake.wait_for_ack(bot.fake.push(bot.fake.payloads.message_shortcut(message, callback_id=ASK_IT)),
                                 timeout=SLACK_ACK_DEADLINE_S)


def dm_posts(bot) -> list[dict]:
    return bot.fake.messages(bot.fake.dm_channel())


def stored(bot) -> tuple[list[Conversation], list[str], list[str]]:
    """The conversations, their stored turns and the stored inbox questions."""
    with bot.services.sessions() as session:
        conversations = list(session.scalars(select(Conversation)))
        turns = [m.text for m in session.scalars(select(Message).order_by(Message.id))]
        pending = [q.text for q in session.scalars(select(PendingQuestion))]
        session.expunge_all()
    return conversations, turns, pending


def test_a_vpn_error_posted_in_a_channel_is_quoted_and_answered_in_my_dm(bot):
    fake = bot.fake
    message = posted_in_channel(bot, "<!channel> getting *VPN connection failed, error 809* since this morning")
    ack = ask_it_about(bot, message)
    assert ack.payload is None and not ack.late

    quote = fake.wait_until(lambda: dm_posts(bot), timeout=10, what="the quoted question")[0]
    assert quote["text"].startswith(":speech_balloon: You asked about this message:\n> ")
    assert "&lt;!channel&gt; getting *VPN connection failed, error 809*" in quote["text"]
    assert "<!channel>" not in quote["text"]  # the quoted mention pings nobody
    answer = bot.final_answer({"channel": fake.dm_channel(), "ts": quote["ts"]})
    assert answer["thread_ts"] == quote["ts"] and answer["ts"] > quote["ts"]  # the question first, then the answer
    rendered = json.dumps(answer["blocks"])
    assert "VPN" in answer["text"] and "Sources:" in rendered and blocks.ACTION_HUMAN in rendered
    bot.settle()
    assert 'itbot_intents_total{intent="vpn"} 1.0' in bot.services.metrics.render().decode()
    assert [m["text"] for m in fake.messages(CHANNEL)] == [message["text"]]  # nothing posted in the channel

    conversations, turns, pending = stored(bot)  # a DM conversation like any other, keyed by the quote's thread
    [conversation] = conversations
    assert (conversation.channel_id, conversation.thread_ts, conversation.user_id, str(conversation.source)) == (
        fake.dm_channel(), quote["ts"], fake.workspace.user.id, "dm")
    assert "error 809" in turns[0] and "error 809" in pending[0]

    bot.dm("it still says error 809 after a restart", thread_ts=quote["ts"])  # a follow-up in the thread
    bot.final_answer({"channel": fake.dm_channel(), "ts": quote["ts"]}, count=2)
    assert len(stored(bot)[0]) == 1
    assert not fake.warnings


def test_a_password_in_the_message_is_masked_in_my_dm_the_database_and_the_logs(bot, project_logs, caplog):
    fake, secret = bot.fake, "Zq7!shortcut-secret"
    message = posted_in_channel(bot, f"my vpn won't connect, my password is {secret} and it says error 412")
    ask_it_about(bot, message)
    quote = fake.wait_until(lambda: dm_posts(bot), timeout=10, what="the quoted question")[0]
    answer = bot.final_answer({"channel": fake.dm_channel(), "ts": quote["ts"]})
    bot.settle()

    assert "[REDACTED]" in quote["text"] and "error 412" in quote["text"] and secret not in quote["text"]
    assert "never share passwords" in answer["text"]
    assert [c.method for c in fake.calls() if secret in json.dumps(c.params, ensure_ascii=False)] == []
    assert [a for a in fake.acks() if secret in json.dumps(a.payload, ensure_ascii=False)] == []
    _, turns, pending = stored(bot)
    assert turns and pending and not [t for t in turns + pending if secret in t]
    path = bot.database_path
    on_disk = b"".join(p.read_bytes() for p in (path, path.with_name(path.name + "-wal")) if p.exists())
    assert secret.encode() not in on_disk
    logged = project_logs[0].getvalue() + project_logs[1].getvalue()
    assert logged and secret not in logged
    assert not [r for r in caplog.records if secret in f"{r.getMessage()} {r.exc_text or ''}"]


def test_a_message_with_only_a_file_gets_a_one_line_reply_instead_of_an_answer(bot):
    fake = bot.fake
    screenshot = {"id": "F0SCREEN01", "name": "error.png", "mimetype": "image/png", "filetype": "png"}
    message = posted_in_channel(bot, "", subtype="file_share", files=[screenshot])
    assert message["files"] and not message["text"]
    ask_it_about(bot, message)
    [reply] = fake.wait_until(lambda: dm_posts(bot), timeout=10, what="the one-line reply")
    bot.settle()
    assert reply["text"] == NO_TEXT and "\n" not in NO_TEXT
    assert fake.messages(fake.dm_channel(), thread_ts=reply["ts"]) == [reply]  # no answer follows
    assert stored(bot) == ([], [], [])

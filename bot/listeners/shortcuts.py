"""The message shortcut "Ask IT about this": any message (an error pasted in a channel) becomes a DM question.

The question is stored (redacted) before the shortcut is acknowledged, as a DM is, so a crash right after the
ack loses nothing: a restarted process finishes the job. The rest runs on the worker: the person who used it gets,
in their DM with the bot, the message quoted (redacted, Slack markup neutralised), and in that message's thread
the answer, by the same intake as a DM question (rate-limited, answered once; a reply in the thread follows up).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Callable

from answers.redact import redact
from answers.router import Route
from bot.conversation import Question
from bot.incoming import Incoming
from bot.listeners.intake import receive, run_for_user, take_question, take_quoted
from bot.mrkdwn import clip, escape
from bot.posting import post_once

if TYPE_CHECKING:
    from slack_bolt import App
    from slack_sdk import WebClient

    from bot.services import Services

__all__ = ["ASK_IT", "register", "handle_ask_it", "quoted", "ask_quoted"]

ASK_IT = "ask_it_about_this"  # the callback_id in manifest.yml's features.shortcuts
NO_TEXT = ("That message has no text I can read (only a file or an attachment): please type the error or your "
           "question here and I'll help.")
ASKED_ABOUT = "You asked about this message:"
_PLAIN_BROADCAST = re.compile(r"@(channel|here|everyone)\b")


def quoted(text: str, *, heading: str = ASKED_ABOUT) -> str:
    """The DM post that shows what was asked: ``text`` redacted, escaped, broadcasts defused, as a block quote."""
    safe = _PLAIN_BROADCAST.sub(r"\1", escape(clip(redact(text).text)))  # <!channel> is escaped, @here made plain
    lines = "\n".join(f">{' ' if line else ''}{line}" for line in safe.splitlines())
    return f":speech_balloon: {heading}\n{lines}"


def handle_ask_it(services: "Services", client: "WebClient", ack: Callable[..., None],
                  shortcut: dict[str, Any]) -> None:
    """Store the question, then acknowledge; open the DM, quote the message and answer it on the worker.

    The write waits at most about a second for a lock (the ack is due within 3 s); when the database refuses
    it, the question is stored on the worker after the DM post, as before.
    """
    user_id = shortcut["user"]["id"]
    channel = (shortcut.get("channel") or {}).get("id") or ""
    text = ((shortcut.get("message") or {}).get("text") or "").strip()
    # Until the DM is open, a failure is told where the shortcut was used: privately, or through its response_url.
    where = {"channel": channel, "user_id": user_id, "response_url": shortcut.get("response_url")}
    if not text:
        ack()
        run_for_user(services, client, lambda: _nothing_to_ask(client, user_id), thread_ts=None, ephemeral=True,
                     **where)
        return
    team = (shortcut.get("team") or {}).get("id") or shortcut["user"].get("team_id", "")
    trigger = shortcut.get("trigger_id")
    ask_quoted(services, client, ack, team_id=team, text=text, event_id=trigger and f"shortcut:{trigger}", **where)


def ask_quoted(services: "Services", client: "WebClient", ack: Callable[..., None], *, team_id: str, user_id: str,
               text: str, channel: str, heading: str = ASKED_ABOUT, topic: str | None = None,
               event_id: str | None = None, response_url: str | None = None, ephemeral: bool = True) -> None:
    """Store ``text`` as the user's question, acknowledge, then quote it in their DM and answer it in the quote's
    thread: the durable door for text that comes from elsewhere (the message shortcut, the Home tab's form).

    Stored (redacted) before ``ack()``, with the DM post still to be made, so a process that dies after the ack
    loses nothing: a restarted one posts the quote once and answers. When the database refuses the write within
    about a second, the ack goes out anyway and the question is stored on the worker after the DM post
    (:func:`ask_in_dm`). ``channel``/``response_url``/``ephemeral``: where a failure is
    told until the DM is open.
    """
    quote = quoted(text, heading=heading)
    # its DM and thread are not known yet: the post that opens them is stored with it
    question = Question(team_id=team_id, channel_id="", thread_ts="", user_id=user_id, source="dm", text=text)
    received = receive(services, Incoming(question, "", None), event_id=event_id, quote=quote, topic=topic)
    ack()
    where = {"channel": channel, "user_id": user_id, "response_url": response_url, "ephemeral": ephemeral}
    if received.stored is not None:
        take_quoted(services, client, received.stored, received.incoming.question, quote=quote,
                    route=Route.certain(topic) if topic else None, **where)
        return
    run_for_user(services, client, lambda: ask_in_dm(
        services, client, team_id=team_id, user_id=user_id, text=text, heading=heading, topic=topic),
        thread_ts=None, **where)


def _nothing_to_ask(client: "WebClient", user_id: str) -> None:
    """The shortcut was used on a message without text (only a file or an image): say so in the DM."""
    dm = client.conversations_open(users=user_id)["channel"]["id"]
    post_once(client, channel=dm, text=NO_TEXT)


def ask_in_dm(services: "Services", client: "WebClient", *, team_id: str, user_id: str, text: str,
              heading: str = ASKED_ABOUT, topic: str | None = None) -> None:
    """Quote ``text`` in the user's DM with the bot and take it as a question in the quote's thread, stored once
    the quote is posted: :func:`ask_quoted`'s way when the database refused the write before the ack. ``topic``
    is a topic the user picked, which the answer then keeps to.
    """
    dm = client.conversations_open(users=user_id)["channel"]["id"]
    quote_ts = post_once(client, channel=dm, text=quoted(text, heading=heading))["ts"]
    question = Question(team_id=team_id, channel_id=dm, thread_ts=quote_ts, user_id=user_id, source="dm", text=text)
    received = receive(services, Incoming(question, dm, quote_ts), event_id=None, topic=topic)
    take_question(services, client, received, route=Route.certain(topic) if topic else None)


def register(app: "App", services: "Services") -> None:
    app.message_shortcut(ASK_IT)(
        lambda ack, shortcut, client: handle_ask_it(services, client, ack, shortcut))

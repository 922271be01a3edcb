"""``/itsupport <question> | help | status | known``, answered ephemerally.

``/itsupport known`` lists the known issues (outage notices) in force; agents post one with ``/itsupport known
<topic>: <text>`` (``<topic> for 2h: <text>`` or a trailing ``for 2h`` sets how long it lasts, 8 hours by default)
and end it with ``/itsupport known clear <topic|id>``.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any, Callable

from bot import blocks
from bot.conversation import (Question, clear_known_issue, current_known_issues, known_duration, known_topic,
                              post_known_issue)
from bot.delivery import post_in_place
from bot.incoming import Incoming
from bot.listeners.home import refresh_homes
from bot.listeners.intake import receive, run_for_user, take_question
from bot.working import slack_error
from storage import repository as repo

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from slack_bolt import App
    from slack_sdk import WebClient

    from bot.services import Services

__all__ = ["register"]


def handle_itsupport(services: "Services", client: "WebClient", ack: Callable[..., None], command: dict[str, Any]) -> None:
    text = (command.get("text") or "").strip()
    if text.lower() in ("", "help", "?"):
        ack(**blocks.help_blocks(services.settings.helpdesk_name))
        return
    ack()  # before any database work: a locked or unreachable database must not make Slack time out
    response_url = command.get("response_url")  # reaches the user where the bot is not a channel member
    if text.lower() == "status":
        run_for_user(services, client, lambda: _post_status(services, client, command), channel=command["channel_id"],
                     thread_ts=None, user_id=command["user_id"], ephemeral=True, response_url=response_url)
        return
    known = known_command(text)
    if known is not None:
        run_for_user(services, client, lambda: _post_known(services, client, command, known),
                     channel=command["channel_id"], thread_ts=None, user_id=command["user_id"], ephemeral=True,
                     response_url=response_url)
        return
    question = Question(team_id=command.get("team_id", ""), channel_id=command["channel_id"],
                        thread_ts=f"slash:{command.get('trigger_id') or command['user_id']}",
                        user_id=command["user_id"], source="slash", text=text)
    received = receive(services, Incoming(question, command["channel_id"], None), event_id=None, ephemeral=True)
    take_question(services, client, received, response_url=response_url)


def _post_status(services: "Services", client: "WebClient", command: dict[str, Any]) -> None:
    with services.sessions.begin() as session:
        message = blocks.status_blocks(repo.list_open_escalations_for_user(session, command["user_id"]))
    post_in_place(client, channel=command["channel_id"], thread_ts=None, user_id=command["user_id"], ephemeral=True,
                  message=message, response_url=command.get("response_url"))


KNOWN_USAGE = "`/itsupport known <topic>: <what is wrong>` (add `for 2h` to set how long it lasts; 8 hours by default)"
_LASTS = re.compile(r"^(?P<rest>.*?)\s*\(?\bfor\s+(?P<lasts>\d+\s*[a-z]+)\)?\s*$", re.IGNORECASE | re.DOTALL)


def known_command(text: str) -> tuple[Any, ...] | None:
    """``("list",)``, ``("clear", which)`` or ``("post", topic, text, lasts)`` for ``known ...``; None otherwise.

    ``lasts`` is a ``for 2h`` after the topic or at the end of the text (None: the default). A message that starts
    with "known" but has no colon ("known bug in Teams?") is a question, not a command.
    """
    word, _, rest = text.partition(" ")
    rest = rest.strip()
    if word.lower() != "known":
        return None
    if rest.lower() in ("", "issues", "list"):
        return ("list",)
    first, _, which = rest.partition(" ")
    if first.lower() == "clear":
        return ("clear", which.strip())
    if ":" not in rest:
        return None
    topic, _, body = (part.strip() for part in rest.partition(":"))
    for part in ("topic", "body"):
        found = _LASTS.match(topic if part == "topic" else body)
        lasts = known_duration(found["lasts"]) if found else None
        if found and lasts is not None:  # "closed for 2 people" is text, not a duration
            return ("post", found["rest"], body, lasts) if part == "topic" else ("post", topic, found["rest"], lasts)
    return ("post", topic, body, None)


def _post_known(services: "Services", client: "WebClient", command: dict[str, Any], known: tuple[Any, ...]) -> None:
    user = command["user_id"]
    if known[0] == "list":
        lines = [f"`#{n.id}` " + blocks.known_issue_line(text=n.text, created_at=n.created_at,
                                                        created_by=n.created_by, topic=n.topic)
                 for n in current_known_issues(services.sessions)]
        message = blocks.known_issues_message(lines)
    elif not services.is_agent(user):  # may ask Slack for the user group: on the worker, after the ack
        message = blocks.plain_message(":no_entry: Only helpdesk agents can post or clear known issues. "
                                       "`/itsupport known` lists the current ones.")
    else:
        message, announcements = _change_known(services, user, known)
        # the notice is on every Home tab: republish the open ones (an outage is news now, not at the next visit)
        refresh_homes(services, client, [user, *sorted(services.known_agents()), *services.home_viewers.users()])
        message = _announce(services, client, announcements, message)
    post_in_place(client, channel=command["channel_id"], thread_ts=None, user_id=user, ephemeral=True,
                  message=message, response_url=command.get("response_url"))


def _change_known(services: "Services", user: str,
                  known: tuple[Any, ...]) -> tuple[blocks.Message, list[blocks.Message]]:
    """Post or clear a known issue for an agent: the message that tells them what happened, and the posts for the
    status channel (none when nothing changed)."""
    kb_topics = services.engine.kb.topics()
    if known[0] == "clear":
        if not known[1]:
            return blocks.plain_message("Say which: `/itsupport known clear <topic|id>` (`/itsupport known` lists "
                                        "them)."), []
        ended = clear_known_issue(services.sessions, which=known[1], cleared_by=user, kb_topics=kb_topics)
        return (blocks.known_issues_cleared(which=known[1], cleared=[(n.id, n.topic) for n in ended]),
                [blocks.known_issue_ended(topic=n.topic, cleared_by=user) for n in ended])
    _, name, text, lasts = known
    topic, close = known_topic(name, kb_topics)
    if topic is None:
        return blocks.unknown_topic_message(name, close), []
    if not text:
        return blocks.plain_message(f"Usage: {KNOWN_USAGE}."), []
    notice = post_known_issue(services.sessions, topic=topic, text=text, created_by=user, lasts=lasts)
    return (blocks.known_issue_posted(issue_id=notice.id, topic=topic, expires_at=notice.expires_at),
            [blocks.known_issue_announcement(text=notice.text, topic=topic, created_by=user,
                                             expires_at=notice.expires_at)])


def _announce(services: "Services", client: "WebClient", posts: list[blocks.Message],
              message: blocks.Message) -> blocks.Message:
    """Post ``posts`` in the status channel (ITBOT_STATUS_CHANNEL), if one is set; the agent's ``message``, with a
    line added when Slack refused (the notice itself is stored and shown either way)."""
    from slack_sdk.errors import SlackApiError

    channel = services.settings.status_channel
    if not channel or not posts:
        return message
    try:
        for post in posts:
            client.chat_postMessage(channel=channel, text=post["text"], blocks=post["blocks"], unfurl_links=False)
    except SlackApiError as error:
        code = slack_error(error)
        log.warning("could not announce the known issue in %s: %s", channel, code)
        return blocks.with_note(message, f":warning: Not announced in <#{channel}>: Slack said `{code}` (invite the "
                                         "bot to the channel, or check ITBOT_STATUS_CHANNEL).")
    return message


def register(app: "App", services: "Services") -> None:
    app.command("/itsupport")(lambda ack, command, client: handle_itsupport(services, client, ack, command))

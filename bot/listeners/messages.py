"""Direct messages, @mentions, follow-ups in threads, and agents' replies in escalation threads."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from bot.conversation import claim_event, is_web, record_agent_message, relay_target_for_agent
from bot.delivery import notify_user
from bot.incoming import IGNORED_SUBTYPES, from_a_bot
from bot.listeners.intake import INCOMING, take_question
from bot.mrkdwn import clip, escape
from bot.posting import post_once

if TYPE_CHECKING:
    from slack_bolt import App
    from slack_sdk import WebClient

    from bot.services import Services

__all__ = ["register"]

log = logging.getLogger(__name__)


def _file_only(services: "Services", client: "WebClient", event: dict[str, Any]) -> None:
    post_once(client, channel=event["channel"], thread_ts=event.get("thread_ts") or event["ts"], text=(
        "I can't read files or screenshots yet. Please type what you see, for example the app and the exact error "
        "message."))


def handle_message(services: "Services", client: "WebClient", event: dict[str, Any], context: dict[str, Any],
                   event_id: str | None = None) -> None:
    """Route one ``message`` event: DM question (stored by the durable intake), bare file, agent relay, or nothing."""
    incoming = context.get(INCOMING)
    if incoming is not None:
        take_question(services, client, incoming)
        return
    subtype = event.get("subtype")
    if subtype in IGNORED_SUBTYPES or from_a_bot(event, services.bot_user_id):
        return
    if event.get("channel_type") == "im":
        if subtype == "file_share":
            _file_only(services, client, event)
        return
    thread_ts = event.get("thread_ts")
    if thread_ts and event["channel"] == services.settings.escalation_channel:
        _relay_agent_reply(services, client, event, thread_ts, event_id)


def _relay_agent_reply(services: "Services", client: "WebClient", event: dict[str, Any], thread_ts: str,
                       event_id: str | None) -> None:
    if not services.is_agent(event["user"]):
        return
    if event_id and not claim_event(services.sessions, f"relay:{event_id}"):
        return  # Slack redelivered it (to this replica or another): relayed once already
    target = relay_target_for_agent(services.sessions, channel_id=event["channel"], thread_ts=thread_ts)
    if target is None:
        return
    conversation_id, user_id, channel, user_thread = target
    stored = record_agent_message(services.sessions, conversation_id, event.get("text") or "")
    if is_web(user_thread):  # the web chat page reads it from the database while it is open
        return
    notify_user(client, user_id=user_id, channel=channel, thread_ts=user_thread,
                message={"text": f"*<@{event['user']}> (helpdesk):* {escape(clip(stored))}"})


def handle_mention(services: "Services", client: "WebClient", context: dict[str, Any]) -> None:
    """An @mention in a channel: answered in a thread there."""
    incoming = context.get(INCOMING)
    if incoming is not None:
        take_question(services, client, incoming)


def register(app: "App", services: "Services") -> None:
    app.event("message")(lambda body, event, client, context: handle_message(services, client, event, context,
                                                                              body.get("event_id")))
    app.event("app_mention")(lambda client, context: handle_mention(services, client, context))

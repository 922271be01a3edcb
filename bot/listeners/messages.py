"""Direct messages, @mentions, follow-ups in threads, and agents' replies in escalation threads."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from bot.conversation import Question, mention_key, record_agent_message, relay_target_for_agent
from bot.delivery import notify_user
from bot.listeners.intake import take_question
from bot.mrkdwn import clip, escape
from bot.posting import post_once

if TYPE_CHECKING:
    from slack_bolt import App
    from slack_sdk import WebClient

    from bot.services import Services

__all__ = ["register"]

log = logging.getLogger(__name__)
_IGNORED_SUBTYPES = {"message_changed", "message_deleted", "channel_join", "channel_leave", "group_join",
                     "group_leave", "bot_message", "message_replied", "thread_broadcast", "channel_topic",
                     "channel_purpose", "channel_name", "pinned_item", "unpinned_item", "ekm_access_denied"}
_MENTION = re.compile(r"<@[UW][A-Z0-9]+(\|[^>]*)?>")


def _from_a_bot(services: "Services", event: dict[str, Any]) -> bool:
    return bool(event.get("bot_id") or event.get("bot_profile")) or event.get("user") in (None, services.bot_user_id)


def _file_only(services: "Services", client: "WebClient", event: dict[str, Any]) -> None:
    post_once(client, channel=event["channel"], thread_ts=event.get("thread_ts") or event["ts"], text=(
        "I can't read files or screenshots yet. Please type what you see, for example the app and the exact error "
        "message."))


def handle_message(services: "Services", client: "WebClient", event: dict[str, Any], body: dict[str, Any]) -> None:
    """Route one ``message`` event: DM question, agent relay, or nothing."""
    subtype = event.get("subtype")
    if subtype in _IGNORED_SUBTYPES or _from_a_bot(services, event):
        return
    text = event.get("text") or ""
    channel_type = event.get("channel_type")
    if channel_type == "im":
        if subtype == "file_share" and not text.strip():
            _file_only(services, client, event)
            return
        thread_ts = event.get("thread_ts") or event["ts"]
        question = Question(team_id=body.get("team_id") or event.get("team", ""), channel_id=event["channel"],
                            thread_ts=thread_ts, user_id=event["user"], source="dm", text=text)
        take_question(services, client, question, event_id=body.get("event_id"), reply_channel=event["channel"],
                      reply_thread_ts=thread_ts)
        return
    thread_ts = event.get("thread_ts")
    if thread_ts and event["channel"] == services.settings.escalation_channel:
        _relay_agent_reply(services, client, event, thread_ts)


def _relay_agent_reply(services: "Services", client: "WebClient", event: dict[str, Any], thread_ts: str) -> None:
    if not services.is_agent(event["user"]):
        return
    target = relay_target_for_agent(services.sessions, channel_id=event["channel"], thread_ts=thread_ts)
    if target is None:
        return
    conversation_id, user_id, channel, user_thread = target
    stored = record_agent_message(services.sessions, conversation_id, event.get("text") or "")
    notify_user(client, user_id=user_id, channel=channel, thread_ts=user_thread,
                message={"text": f"*<@{event['user']}> (helpdesk):* {escape(clip(stored))}"})


def handle_mention(services: "Services", client: "WebClient", event: dict[str, Any], body: dict[str, Any]) -> None:
    """An @mention in a channel: answered in a thread there."""
    if _from_a_bot(services, event):
        return
    text = _MENTION.sub(" ", event.get("text") or "").strip()
    thread_ts = event.get("thread_ts") or event["ts"]
    question = Question(team_id=body.get("team_id") or event.get("team", ""), channel_id=event["channel"],
                        thread_ts=mention_key(thread_ts, event["user"]), user_id=event["user"], source="mention",
                        text=text)
    take_question(services, client, question, event_id=body.get("event_id"), reply_channel=event["channel"],
                  reply_thread_ts=thread_ts)


def register(app: "App", services: "Services") -> None:
    app.event("message")(lambda event, body, client: handle_message(services, client, event, body))
    app.event("app_mention")(lambda event, body, client: handle_mention(services, client, event, body))

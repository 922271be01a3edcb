"""Which Slack events are questions for the bot: a DM from a person, or an @mention. Pure: no Slack calls.

The durable intake reads it before Slack is acknowledged, and the listeners after, so both agree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bot.conversation import Question, mention_key

__all__ = ["Incoming", "IGNORED_SUBTYPES", "from_a_bot", "incoming_question"]

IGNORED_SUBTYPES = {"message_changed", "message_deleted", "channel_join", "channel_leave", "group_join",
                    "group_leave", "bot_message", "message_replied", "thread_broadcast", "channel_topic",
                    "channel_purpose", "channel_name", "pinned_item", "unpinned_item", "ekm_access_denied"}
_MENTION = re.compile(r"<@[UW][A-Z0-9]+(\|[^>]*)?>")


@dataclass(frozen=True, slots=True)
class Incoming:
    """A question and where its answer goes."""

    question: Question
    reply_channel: str
    reply_thread_ts: str | None


def from_a_bot(event: dict[str, Any], bot_user_id: str) -> bool:
    return bool(event.get("bot_id") or event.get("bot_profile")) or event.get("user") in (None, bot_user_id)


def incoming_question(body: dict[str, Any], *, bot_user_id: str) -> Incoming | None:
    """The question an Events API ``body`` carries, or None (not a question: a bot, an edit, a bare file...)."""
    event = body.get("event") or {}
    kind = event.get("type")
    if kind not in ("message", "app_mention") or from_a_bot(event, bot_user_id) or not event.get("channel"):
        return None
    team = body.get("team_id") or event.get("team", "")
    if kind == "app_mention":
        thread_ts = event.get("thread_ts") or event["ts"]
        text = _MENTION.sub(" ", event.get("text") or "").strip()
        question = Question(team_id=team, channel_id=event["channel"], thread_ts=mention_key(thread_ts, event["user"]),
                            user_id=event["user"], source="mention", text=text, message_ts=event["ts"])
        return Incoming(question, event["channel"], thread_ts)
    subtype = event.get("subtype")
    text = event.get("text") or ""
    if event.get("channel_type") != "im" or subtype in IGNORED_SUBTYPES or (subtype == "file_share"
                                                                             and not text.strip()):
        return None
    thread_ts = event.get("thread_ts") or event["ts"]
    question = Question(team_id=team, channel_id=event["channel"], thread_ts=thread_ts, user_id=event["user"],
                        source="dm", text=text, message_ts=event["ts"])
    return Incoming(question, event["channel"], thread_ts)

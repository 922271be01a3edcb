"""The helpdesk channel's side of an escalation, shared by every door: the Slack form and the web chat."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot import blocks
from bot.conversation import Escalated, escalation_posted
from bot.mrkdwn import clip, escape
from bot.posting import post_once

if TYPE_CHECKING:
    from slack_sdk import WebClient
    from sqlalchemy.orm import Session, sessionmaker

__all__ = ["post_escalation", "relay_to_agent"]


def post_escalation(client: "WebClient", sessions: "sessionmaker[Session]", *, channel: str,
                    escalated: Escalated) -> None:
    """Post a new escalation to the helpdesk channel and remember the post (agents reply in its thread)."""
    posted = post_once(client, channel=channel, **blocks.escalation_post(
        escalation_id=escalated.escalation_id, user_id=escalated.user_id, intent=escalated.intent,
        urgency=escalated.urgency, summary=escalated.summary, details=escalated.details, status="open"))
    escalation_posted(sessions, escalated.escalation_id, channel_id=posted["channel"], message_ts=posted["ts"])


def relay_to_agent(client: "WebClient", *, channel: str, thread_ts: str, who: str, text: str) -> None:
    """Post a user's message (already redacted) in their escalation's thread, where the agent works."""
    post_once(client, channel=channel, thread_ts=thread_ts, text=f"*{who}:* {escape(clip(text))}")

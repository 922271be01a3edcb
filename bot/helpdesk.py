"""The helpdesk channel's side of an escalation, shared by every door: the Slack form and the web chat.

With a ticket system configured (``ITBOT_TICKETS``), each escalation's ticket is delivered by
:func:`deliver_tickets` (right after the post, and by the scheduler until it lands); its outcome is shown on
the helpdesk post, told to the employee in their thread, and listed in their "My requests".
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from slack_sdk.errors import SlackClientError

from bot import blocks
from bot.conversation import Escalated, conversation_summary, escalation_posted, is_web
from bot.mrkdwn import clip, escape
from bot.posting import post_once
from storage.models import Escalation
from tickets import Backoff, Delivered, TicketState, build_sink, deliver_due

if TYPE_CHECKING:
    from slack_sdk import WebClient
    from sqlalchemy.orm import Session, sessionmaker

    from bot.services import Services

__all__ = ["post_escalation", "relay_to_agent", "escalation_message", "deliver_tickets", "show_ticket"]

log = logging.getLogger(__name__)


def _ticket(sessions: "sessionmaker[Session]", escalation_id: int) -> TicketState | None:
    with sessions.begin() as session:
        escalation = session.get(Escalation, escalation_id)
        return TicketState.of(escalation) if escalation is not None else None


def post_escalation(client: "WebClient", sessions: "sessionmaker[Session]", *, channel: str,
                    escalated: Escalated, tickets: bool | None = None) -> None:
    """Post a new escalation to the helpdesk channel and remember the post (agents reply in its thread).

    ``tickets``: whether a ticket system is configured, so the post says where the ticket stands; None (a door
    that does not know) shows the ticket only once something happened to it.
    """
    ticket = _ticket(sessions, escalated.escalation_id) if tickets is not False else None
    if tickets is None and ticket is not None and ticket.status == "pending" and not ticket.attempts:
        ticket = None
    posted = post_once(client, channel=channel, **blocks.escalation_post(
        escalation_id=escalated.escalation_id, user_id=escalated.user_id, intent=escalated.intent,
        urgency=escalated.urgency, summary=escalated.summary, details=escalated.details, status="open",
        ticket=ticket))
    escalation_posted(sessions, escalated.escalation_id, channel_id=posted["channel"], message_ts=posted["ts"])


def escalation_message(sessions: "sessionmaker[Session]", escalation: Escalation, *,
                       tickets: bool) -> dict[str, Any]:
    """The helpdesk post of a loaded escalation as it stands now (status, agent and, with ``tickets``, ticket)."""
    conversation = escalation.conversation
    _summary, intent = conversation_summary(sessions, conversation.id)
    return blocks.escalation_post(
        escalation_id=escalation.id, user_id=conversation.user_id, intent=intent, urgency=str(escalation.urgency),
        summary=escalation.summary, details=escalation.details, status=str(escalation.status),
        agent_id=escalation.resolved_by or escalation.claimed_by,
        ticket=TicketState.of(escalation) if tickets else None)


def relay_to_agent(client: "WebClient", *, channel: str, thread_ts: str, who: str, text: str) -> None:
    """Post a user's message (already redacted) in their escalation's thread, where the agent works."""
    post_once(client, channel=channel, thread_ts=thread_ts, text=f"*{who}:* {escape(clip(text))}")


def show_ticket(client: "WebClient", sessions: "sessionmaker[Session]", delivered: Delivered) -> str | None:
    """Show one ticket attempt's outcome: the helpdesk post says where the ticket stands, and the employee is told
    in their thread when it was opened. Returns the Slack user whose "My requests" now lists a ticket."""
    from bot.delivery import notify_user  # bot.delivery relays through this module: imported when needed

    with sessions.begin() as session:
        escalation = session.get(Escalation, delivered.escalation_id)
        conversation = escalation.conversation
    try:
        if escalation.channel_id and escalation.channel_message_ts:  # not yet posted: the post will show it
            client.chat_update(channel=escalation.channel_id, ts=escalation.channel_message_ts,
                               **escalation_message(sessions, escalation, tickets=True))
        if delivered.ref is None:
            return None
        notify_user(client, user_id=conversation.user_id, channel=conversation.channel_id,
                    thread_ts=conversation.thread_ts, message=blocks.ticket_message(
                        escalation_id=escalation.id, ticket_id=delivered.ref.id, url=delivered.ref.url))
    except SlackClientError as error:  # the ticket is stored either way; the next repost shows it
        log.warning("ticket of escalation %s: Slack refused the update (%s)", escalation.id, type(error).__name__)
        return None
    return None if is_web(conversation.thread_ts) else conversation.user_id


def deliver_tickets(services: "Services", client: "WebClient | None", *, only: int | None = None) -> list[Delivered]:
    """Send the due tickets (or only escalation ``only``'s) to the configured ticket system, and show each outcome.

    Runs on the worker right after an escalation is posted, and on the scheduler every few seconds (so at start-up
    too): a ticket that failed is retried there, with a growing delay. Nothing to do when tickets are off.
    """
    settings = services.settings
    sink = build_sink(settings.ticket_config())
    if sink is None:
        return []
    delivered = deliver_due(services.sessions, sink, backoff=Backoff(first_s=settings.ticket_retry_s), only=only)
    if client is not None:
        requesters = [user for outcome in delivered if (user := show_ticket(client, services.sessions, outcome))]
        if requesters:
            from bot.listeners.home import refresh_homes  # listeners import this module: imported when needed

            refresh_homes(services, client, sorted(set(requesters)))
    return delivered

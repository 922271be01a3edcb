"""Forms: "Talk to a human" (create the escalation, post it to the helpdesk channel), and the Home tab's two:
a topic's "describe the problem" (a conversation in the user's DM) and "Add detail" (to the request's thread)."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any, Callable

from answers.taxonomy import IT_INTENTS, topic_label
from bot import blocks, home_tab
from bot.conversation import open_escalation
from bot.delivery import notify_user
from bot.helpdesk import deliver_tickets, post_escalation, relay_to_agent
from bot.listeners.home import publish_home, refresh_homes
from bot.listeners.intake import run_for_user
from bot.listeners.shortcuts import ask_quoted
from storage import repository as repo

if TYPE_CHECKING:
    from slack_bolt import App
    from slack_sdk import WebClient

    from bot.services import Services

__all__ = ["register", "create_escalation", "add_detail"]

log = logging.getLogger(__name__)


def create_escalation(services: "Services", client: "WebClient", *, conversation_id: int, urgency: str,
                      details: str | None, requester: str) -> None:
    """Open the escalation (once), post it to the helpdesk channel, tell the user (see ``open_escalation``), and
    hand it to the ticket system when one is configured (retried by the scheduler if that fails)."""
    escalated = open_escalation(services.sessions, conversation_id=conversation_id, requester=requester,
                                urgency=urgency, details=details)
    if escalated is None:
        return  # a user can only escalate their own conversation
    escalation_id = escalated.escalation_id
    where = {"user_id": escalated.user_id, "channel": escalated.channel_id, "thread_ts": escalated.key}
    if not escalated.created:
        notify_user(client, **where, message={"text": f"Your request #{escalation_id} is already with the helpdesk."})
        return
    target = services.settings.escalation_channel
    if not target:
        org = services.engine.org
        notify_user(client, **where, message={"text": (
            f"I've logged your request #{escalation_id}. Please also call {org.helpdesk_phone} or email "
            f"{org.helpdesk_email}: no helpdesk channel is configured yet.")})
        log.warning("ITBOT_ESCALATION_CHANNEL is not set: escalation %s was stored but not posted", escalation_id)
        deliver_tickets(services, client, only=escalation_id)
        return
    post_escalation(client, services.sessions, channel=target, escalated=escalated,
                    tickets=services.settings.tickets != "none")
    notify_user(client, **where, message={"text": (
        f":raising_hand: I've passed this to the helpdesk as request #{escalation_id} (urgency: {urgency}). "
        "A person will reply in this thread.")})
    deliver_tickets(services, client, only=escalation_id)


def on_escalate_submit(services: "Services", client: "WebClient", ack: Callable[..., None], body: dict[str, Any],
                       view: dict[str, Any]) -> None:
    ack()
    conversation_id = json.loads(view.get("private_metadata") or "{}").get("c")
    values = view.get("state", {}).get("values", {})
    urgency = ((values.get("urgency", {}).get("urgency", {}).get("selected_option") or {}).get("value")) or "normal"
    details = _typed(view, "details") or None
    requester = body["user"]["id"]
    if conversation_id is None:
        return

    def job() -> None:
        create_escalation(services, client, conversation_id=int(conversation_id), urgency=urgency, details=details,
                          requester=requester)
        # "My requests" shows it (only one's own can be escalated), and every agent's queue
        refresh_homes(services, client, [requester, *sorted(services.known_agents())])

    # A failure is apologised for by DM (a user id as the channel): a modal has no thread to answer in.
    run_for_user(services, client, job, channel=requester, thread_ts=None, user_id=requester, ephemeral=False)


def _typed(view: dict[str, Any], block_id: str) -> str:
    """What the user typed in the form's text input ``block_id`` (its action_id is the same)."""
    values = view.get("state", {}).get("values", {})
    return (values.get(block_id, {}).get(block_id, {}).get("value") or "").strip()


def on_ask_submit(services: "Services", client: "WebClient", ack: Callable[..., None], body: dict[str, Any],
                  view: dict[str, Any]) -> None:
    """A topic's form on the Home tab: the description becomes a question in the user's DM, answered there."""
    text = _typed(view, "problem")
    if not text:
        ack(response_action="errors", errors={"problem": "Please describe the problem in a few words."})
        return
    topic = json.loads(view.get("private_metadata") or "{}").get("t")
    topic = topic if topic in IT_INTENTS else None  # private_metadata is ours, but checked like any input
    user = body["user"]
    heading = f"You asked about *{topic_label(topic)}*:" if topic else "You asked:"
    # stored before the ack, as a DM is: a restart after the ack still answers it
    ask_quoted(services, client, ack, team_id=user.get("team_id") or (body.get("team") or {}).get("id") or "",
               user_id=user["id"], text=text, heading=heading, topic=topic, channel=user["id"], ephemeral=False,
               event_id=f"home-form:{view['id']}" if view.get("id") else None)


def add_detail(services: "Services", client: "WebClient", *, escalation_id: int, user_id: str, text: str) -> None:
    """Store what the requester adds (redacted) and relay it to the request's helpdesk thread as a follow-up is
    relayed; their Home tab then says where it went."""
    channel = thread = stored = None
    with services.sessions.begin() as session:
        found = repo.add_escalation_detail(session, escalation_id, user_id=user_id, text=text)
        if found is not None:
            escalation, stored = found
            channel, thread = escalation.channel_id, escalation.channel_message_ts
    if found is None:
        notice = f"Request #{escalation_id} is closed, so nothing was added. Send me a message if you still need help."
    elif channel and thread:
        relay_to_agent(client, channel=channel, thread_ts=thread, who=f"<@{user_id}>", text=stored or "")
        notice = f"Added to request #{escalation_id}: the helpdesk sees it in the request's thread."
    else:  # never posted (no helpdesk channel): stored with the conversation, which the helpdesk reads
        notice = f"Added to request #{escalation_id}."
    publish_home(services, client, user_id, notice=notice)


def on_detail_submit(services: "Services", client: "WebClient", ack: Callable[..., None], body: dict[str, Any],
                     view: dict[str, Any]) -> None:
    """"Add detail" on the Home tab: relayed on the worker; an empty form is refused in place."""
    text = _typed(view, "detail")
    if not text:
        ack(response_action="errors", errors={"detail": "Please write what the helpdesk should know."})
        return
    ack()
    escalation_id, user_id = json.loads(view.get("private_metadata") or "{}").get("e"), body["user"]["id"]
    if escalation_id is None:
        return
    run_for_user(services, client, lambda: add_detail(services, client, escalation_id=int(escalation_id),
                                                      user_id=user_id, text=text),
                 channel=user_id, thread_ts=None, user_id=user_id, ephemeral=False)


def register(app: "App", services: "Services") -> None:
    app.view(blocks.VIEW_ESCALATE)(
        lambda ack, body, view, client: on_escalate_submit(services, client, ack, body, view))
    app.view(home_tab.VIEW_ASK)(lambda ack, body, view, client: on_ask_submit(services, client, ack, body, view))
    app.view(home_tab.VIEW_DETAIL)(
        lambda ack, body, view, client: on_detail_submit(services, client, ack, body, view))

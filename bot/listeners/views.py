"""The "Talk to a human" form: create the escalation and post it to the helpdesk channel."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any, Callable

from bot import blocks
from bot.conversation import open_escalation
from bot.delivery import notify_user
from bot.helpdesk import post_escalation
from bot.listeners.intake import run_for_user

if TYPE_CHECKING:
    from slack_bolt import App
    from slack_sdk import WebClient

    from bot.services import Services

__all__ = ["register", "create_escalation"]

log = logging.getLogger(__name__)


def create_escalation(services: "Services", client: "WebClient", *, conversation_id: int, urgency: str,
                      details: str | None, requester: str) -> None:
    """Open the escalation (once), post it to the helpdesk channel and tell the user (see ``open_escalation``)."""
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
        return
    post_escalation(client, services.sessions, channel=target, escalated=escalated)
    notify_user(client, **where, message={"text": (
        f":raising_hand: I've passed this to the helpdesk as request #{escalation_id} (urgency: {urgency}). "
        "A person will reply in this thread.")})


def on_escalate_submit(services: "Services", client: "WebClient", ack: Callable[..., None], body: dict[str, Any],
                       view: dict[str, Any]) -> None:
    ack()
    conversation_id = json.loads(view.get("private_metadata") or "{}").get("c")
    values = view.get("state", {}).get("values", {})
    urgency = ((values.get("urgency", {}).get("urgency", {}).get("selected_option") or {}).get("value")) or "normal"
    details = (values.get("details", {}).get("details", {}).get("value") or "").strip() or None
    requester = body["user"]["id"]
    if conversation_id is None:
        return

    def job() -> None:
        create_escalation(services, client, conversation_id=int(conversation_id), urgency=urgency, details=details,
                          requester=requester)

    # A failure is apologised for by DM (a user id as the channel): a modal has no thread to answer in.
    run_for_user(services, client, job, channel=requester, thread_ts=None, user_id=requester, ephemeral=False)


def register(app: "App", services: "Services") -> None:
    app.view(blocks.VIEW_ESCALATE)(
        lambda ack, body, view, client: on_escalate_submit(services, client, ack, body, view))

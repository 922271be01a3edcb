"""Buttons: feedback (👍 / 👎, and the older Solved / Not helpful), clarify topics, "Talk to a human", claim / resolve,
satisfaction ratings, and the Home tab's topic, "Add detail" and queue "Claim" buttons."""

from __future__ import annotations

import json
import logging
import re
from typing import TYPE_CHECKING, Any, Callable

from answers.taxonomy import IT_INTENTS
from bot import blocks, home_tab, working
from bot.conversation import (answer_with_topic, conversation_summary, owns_conversation, question_asked,
                              save_kb_draft, slack_thread)
from bot.delivery import notify_user
from bot.incoming import Incoming
from bot.listeners.home import refresh_homes
from bot.listeners.intake import receive, take_question
from storage import repository as repo
from storage.models import Escalation
from tickets import TicketState

if TYPE_CHECKING:
    from slack_bolt import App
    from slack_sdk import WebClient

    from bot.services import Services

__all__ = ["register"]

log = logging.getLogger(__name__)
NOT_YOURS = "Only the person who asked can use these buttons. Send me your own question and I'll help."
NOT_AN_AGENT = "Only helpdesk agents can claim or resolve escalations."
Say = Callable[[str], None]


def _where(body: dict[str, Any]) -> dict[str, Any]:
    """Channel, thread and ephemerality of the message that holds the button."""
    container = body.get("container") or {}
    channel = (body.get("channel") or {}).get("id") or container.get("channel_id")
    message = body.get("message") or {}
    return {"channel": channel, "thread_ts": message.get("thread_ts") or container.get("thread_ts"),
            "ephemeral": bool(container.get("is_ephemeral"))}


def _say_privately(client: "WebClient", body: dict[str, Any], text: str) -> None:
    where = _where(body)
    client.chat_postEphemeral(channel=where["channel"], user=body["user"]["id"], text=text,
                              **({"thread_ts": where["thread_ts"]} if where["thread_ts"] else {}))


def _owner_only(services: "Services", client: "WebClient", body: dict[str, Any], **ids: int) -> bool:
    """True when the clicking user owns the conversation the button is about; otherwise tell them no."""
    if owns_conversation(services.sessions, body["user"]["id"], **ids):
        return True
    _say_privately(client, body, NOT_YOURS)
    return False


def on_feedback(services: "Services", client: "WebClient", body: dict[str, Any], action: dict[str, Any]) -> None:
    """👍 / 👎 (``feedback_buttons``; the value names the verdict) or the older Solved / Not helpful buttons."""
    value = json.loads(action["value"])
    if not _owner_only(services, client, body, message_id=value["m"]):
        return
    if action["action_id"] == blocks.ACTION_FEEDBACK:
        kind = blocks.FEEDBACK_SOLVED if value.get("k") == blocks.FEEDBACK_SOLVED else blocks.FEEDBACK_NOT_HELPFUL
    else:
        kind = blocks.FEEDBACK_SOLVED if action["action_id"] == blocks.ACTION_SOLVED else blocks.FEEDBACK_NOT_HELPFUL
    with services.sessions.begin() as session:
        repo.record_feedback(session, message_id=value["m"], user_id=body["user"]["id"], kind=kind)
    if kind == blocks.FEEDBACK_SOLVED:
        _mark_solved(services, client, value["m"])
        _say_privately(client, body, "Great, glad it's solved! :tada:")
        return
    conversation_id = value.get("c")  # the button it offers checks the owner again when pressed
    if conversation_id is None:
        _say_privately(client, body, "Thanks for telling me. Try describing it differently, or press *Talk to a "
                                     "human* to reach a person.")
        return
    where = _where(body)
    client.chat_postEphemeral(channel=where["channel"], user=body["user"]["id"],
                              **({"thread_ts": where["thread_ts"]} if where["thread_ts"] else {}),
                              **blocks.not_helpful_message(int(conversation_id)))


def _mark_solved(services: "Services", client: "WebClient", message_id: int) -> None:
    """✅ in place of the 👀 on the question, when it was asked in a channel (a DM has no one else to tell)."""
    asked = question_asked(services.sessions, message_id)
    if asked is not None and asked[0] == "mention":
        _source, channel, ts = asked
        if working.react(client, channel=channel, ts=ts, name=working.SOLVED):
            working.unreact(client, channel=channel, ts=ts, name=working.SEEN)


def on_topic(services: "Services", client: "WebClient", body: dict[str, Any], action: dict[str, Any]) -> None:
    value = json.loads(action["value"])
    if not _owner_only(services, client, body, conversation_id=value["c"]):
        return
    found = answer_with_topic(services.engine, services.sessions, value["c"], value["i"])
    if found is None:
        return
    question, route = found
    where = _where(body)
    incoming = Incoming(question, where["channel"], None if where["ephemeral"] else slack_thread(question.thread_ts))
    received = receive(services, incoming, event_id=None, ephemeral=where["ephemeral"], topic=route.intent)
    take_question(services, client, received, route=route)


def on_talk_to_human(services: "Services", client: "WebClient", body: dict[str, Any], action: dict[str, Any]) -> None:
    conversation_id = json.loads(action["value"])["c"]
    if not _owner_only(services, client, body, conversation_id=conversation_id):
        return
    summary, _intent = conversation_summary(services.sessions, conversation_id)
    client.views_open(trigger_id=body["trigger_id"], view=blocks.escalation_modal(conversation_id=conversation_id,
                                                                                  summary=summary))


def _agent_only(services: "Services", client: "WebClient", body: dict[str, Any], say: Say | None = None) -> bool:
    if services.is_agent(body["user"]["id"]):
        return True
    (say or (lambda text: _say_privately(client, body, text)))(NOT_AN_AGENT)
    return False


def _repost(services: "Services", client: "WebClient", escalation_id: int, body: dict[str, Any]) -> Any:
    """Refresh the escalation's channel post: the one clicked, which exists even if its ts is not stored yet."""
    with services.sessions.begin() as session:
        escalation = session.get(Escalation, escalation_id)
        conversation = escalation.conversation
    _summary, intent = conversation_summary(services.sessions, conversation.id)
    message = blocks.escalation_post(
            escalation_id=escalation.id, user_id=conversation.user_id, intent=intent, urgency=str(escalation.urgency),
            summary=escalation.summary, details=escalation.details, status=str(escalation.status),
            agent_id=escalation.resolved_by or escalation.claimed_by,
            ticket=TicketState.of(escalation) if services.settings.tickets != "none" else None)
    clicked = (body.get("message") or {}).get("ts") or (body.get("container") or {}).get("message_ts")
    channel, ts = escalation.channel_id or _where(body)["channel"], escalation.channel_message_ts or clicked
    if channel and ts:  # a click on the Home tab, for an escalation never posted (no helpdesk channel): no post
        client.chat_update(channel=channel, ts=ts, **message)
    return escalation


def _agent_transition(services: "Services", client: "WebClient", body: dict[str, Any], action: dict[str, Any], *,
                      apply: Callable[..., bool], refused: str, tell_user: Callable[[int, str], dict[str, Any]],
                      say: Say | None = None, done: str | None = None) -> None:
    """Claim or resolve atomically, refresh the channel post, tell the user and refresh both Home tabs; agents only.

    ``say`` tells the clicking agent why nothing happened (privately where the button was, by default), ``done``
    is the line their Home tab shows once it worked.
    """
    if not _agent_only(services, client, body, say):
        return
    escalation_id, agent = int(action["value"]), body["user"]["id"]
    with services.sessions.begin() as session:
        won = apply(session, escalation_id, agent_id=agent)
    if not won:  # a double click, or another agent was faster
        (say or (lambda text: _say_privately(client, body, text)))(refused.format(id=escalation_id))
        return
    escalation = _repost(services, client, escalation_id, body)
    conversation = escalation.conversation
    notify_user(client, user_id=conversation.user_id, channel=conversation.channel_id,
                thread_ts=conversation.thread_ts, message=tell_user(escalation_id, agent))
    refresh_homes(services, client, [conversation.user_id, agent, *sorted(services.known_agents())],
                  notices={agent: done.format(id=escalation_id, user=conversation.user_id)} if done else None)


def on_claim(services: "Services", client: "WebClient", body: dict[str, Any], action: dict[str, Any], *,
             say: Say | None = None, done: str | None = None) -> None:
    _agent_transition(services, client, body, action, apply=repo.claim_escalation,
                      refused="Escalation #{id} is already claimed or closed.",
                      tell_user=lambda escalation_id, agent: {"text": (
                          f":wave: <@{agent}> from the helpdesk has picked up your request #{escalation_id}. "
                          "Reply here to talk to them directly.")}, say=say, done=done)


def on_home_claim(services: "Services", client: "WebClient", body: dict[str, Any], action: dict[str, Any]) -> None:
    """"Claim" in the Home tab's queue: the helpdesk channel's Claim; the answer is a line on the agent's Home tab."""
    agent = body["user"]["id"]
    on_claim(services, client, body, action,
             say=lambda text: refresh_homes(services, client, [agent], notices={agent: text}),
             done="You claimed request #{id}: reply in its thread in the helpdesk channel to talk to <@{user}>.")


def on_home_topic(services: "Services", client: "WebClient", body: dict[str, Any], action: dict[str, Any]) -> None:
    """A topic button on the Home tab: the short "describe the problem" form."""
    topic = action.get("value") or ""
    if topic in IT_INTENTS:  # the value comes back as the client sent it
        client.views_open(trigger_id=body["trigger_id"], view=home_tab.ask_modal(topic))


def on_add_detail(services: "Services", client: "WebClient", body: dict[str, Any], action: dict[str, Any]) -> None:
    """"Add detail" on one of my requests: the form, if the request is mine and still active."""
    user = body["user"]["id"]
    with services.sessions.begin() as session:
        escalation = session.get(Escalation, int(action["value"]))
        request = home_tab.Request.of(escalation) if escalation is not None else None
    if request is None or request.user_id != user or request.status not in home_tab.ACTIVE:
        refresh_homes(services, client, [user], notices={user: (
            "That request is closed or not yours. If you still need help, send me a message.")})
        return
    client.views_open(trigger_id=body["trigger_id"], view=home_tab.detail_modal(request))


def on_resolve(services: "Services", client: "WebClient", body: dict[str, Any], action: dict[str, Any]) -> None:
    _agent_transition(services, client, body, action, apply=repo.resolve_escalation,
                      refused="Escalation #{id} is already resolved or cancelled.",
                      tell_user=lambda escalation_id, _agent: blocks.rating_message(escalation_id))


def on_rate(services: "Services", client: "WebClient", body: dict[str, Any], action: dict[str, Any]) -> None:
    value = json.loads(action["value"])
    with services.sessions.begin() as session:
        stored = repo.rate_escalation(session, value["e"], user_id=body["user"]["id"], rating=int(value["r"]))
    where = _where(body)
    if stored and body.get("message"):
        client.chat_update(channel=where["channel"], ts=body["message"]["ts"],
                           text=f"Thanks for rating us {value['r']}/5!", blocks=[])


def on_kb_draft(services: "Services", client: "WebClient", body: dict[str, Any], action: dict[str, Any]) -> None:
    if not _agent_only(services, client, body):
        return
    draft_id = save_kb_draft(services.sessions, int(action["value"]))
    _say_privately(client, body, f"Saved as KB draft #{draft_id}: review it with `itbot kb drafts`." if draft_id
                   else "There is no agent reply in this escalation to save.")


def register(app: "App", services: "Services") -> None:
    def wire(action_id: Any, handler: Callable[..., None]) -> None:
        def listener(ack: Callable[..., None], body: dict[str, Any], action: dict[str, Any], client: "WebClient") -> None:
            ack()
            handler(services, client, body, action)

        app.action(action_id)(listener)

    wire(blocks.ACTION_FEEDBACK, on_feedback)
    wire(blocks.ACTION_SOLVED, on_feedback)
    wire(blocks.ACTION_NOT_HELPFUL, on_feedback)
    wire(re.compile(f"^{blocks.ACTION_TOPIC}_\\d+$"), on_topic)
    wire(blocks.ACTION_HUMAN, on_talk_to_human)
    wire(blocks.ACTION_CLAIM, on_claim)
    wire(blocks.ACTION_RESOLVE, on_resolve)
    wire(re.compile(f"^{blocks.ACTION_RATE}_\\d$"), on_rate)
    wire(blocks.ACTION_KB_DRAFT, on_kb_draft)
    wire(re.compile(f"^{home_tab.ACTION_TOPIC}_\\d+$"), on_home_topic)
    wire(home_tab.ACTION_ADD_DETAIL, on_add_detail)
    wire(home_tab.ACTION_CLAIM, on_home_claim)

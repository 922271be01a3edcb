"""The HTTP API: start a conversation, ask (the answer streamed), give feedback, talk to a human, read updates,
rate the resolved request.

Each route translates HTTP to a use case of ``bot.conversation`` (or ``web.escalations``) and back; nothing here
knows the engine's or the database's insides. A conversation is named by its secret token; every route checks it
belongs to the visitor (a signed-in user must be the one who started it).
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, field_validator

from answers.router import Route
from answers.taxonomy import INTENTS
from bot.conversation import (Question, answer_with_topic, find_conversation_id, give_feedback, open_escalation,
                              start_conversation, updates_since)
from bot.helpdesk import post_escalation
from web.config import WebContext
from web.escalations import Rated, latest_request, rate_request
from web.ratelimit import enforce
from web.stream import answer_events
from web.visitors import Visitor, client_key, new_token, valid_token, visitor

__all__ = ["api_router"]

log = logging.getLogger(__name__)
MAX_MESSAGE_CHARS = 4000
_EMAIL = re.compile(r"[^@\s<>]+@[^@\s<>]+\.[A-Za-z]{2,}")
_PHONE = re.compile(r"\+?[0-9][0-9 ().-]{5,24}[0-9]")


class Started(BaseModel):
    conversation: str = Field(description="The conversation's secret token: keep it, it names the conversation.")


class Ask(BaseModel):
    text: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS, description="The visitor's message.")
    topic: str | None = Field(default=None, max_length=64, description="A topic chosen from an answer's choices: "
                                                                        "re-asks the last question on that topic.")

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("type a message")
        return value


class Verdict(BaseModel):
    message_id: int = Field(gt=0, description="The answer's message_id, from its answer event.")
    helpful: bool


class Recorded(BaseModel):
    stored: bool


class HumanRequest(BaseModel):
    contact: str = Field(min_length=3, max_length=200, description="An email address or phone number.")
    details: str | None = Field(default=None, max_length=2000)
    urgency: Literal["low", "normal", "high", "critical"] = "normal"

    @field_validator("contact")
    @classmethod
    def _contact(cls, value: str) -> str:
        value = value.strip()
        if not (_EMAIL.fullmatch(value) or _PHONE.fullmatch(value)):
            raise ValueError("give an email address (name@example.com) or a phone number (+44 20 7946 0958)")
        return value


class Escalation(BaseModel):
    escalation_id: int
    status: str
    message: str
    ticket_id: str | None = Field(default=None, description="The request's ticket in the helpdesk's ticket system, "
                                                            "once opened (ITBOT_TICKETS).")
    ticket_url: str | None = Field(default=None, description="A link to that ticket, when the system gives one.")


class AgentMessage(BaseModel):
    id: int
    role: str
    text: str


class Updates(BaseModel):
    messages: list[AgentMessage]
    escalation_id: int | None
    escalation_status: str | None
    ticket_id: str | None = Field(default=None, description="The escalation's ticket in the helpdesk's ticket system, "
                                                            "once opened (ITBOT_TICKETS).")
    ticket_url: str | None = Field(default=None, description="A link to that ticket, when the system gives one.")
    satisfaction: int | None = Field(default=None, description="The visitor's 1-5 rating of the resolved request.")


class Rating(BaseModel):
    escalation_id: int = Field(gt=0, description="The request's escalation_id, from the updates.")
    rating: int = Field(ge=1, le=5, description="1 (poor) to 5 (great).")


def api_router(context: WebContext) -> APIRouter:
    """The ``/api`` routes over ``context``'s engine and database."""
    config = context.config
    answering = threading.BoundedSemaphore(config.max_concurrent_answers)
    router = APIRouter(prefix="/api")
    topics = frozenset(INTENTS) | frozenset(context.engine.router.labels) | frozenset(context.engine.kb.topics())

    def signed_in(request: Request) -> str | None:
        header = config.trusted_user_header
        value = request.headers.get(header) if header else None
        return value.strip() if value and value.strip() else None

    def client_of(request: Request) -> str:
        return client_key(request.client.host if request.client else None, signed_in(request))

    def limited(request: Request) -> str:
        """Every API call counts against the per-client request limit; the client's key."""
        key = client_of(request)
        enforce(context.sessions, client=key, limits=[("api", config.request_limit, "requests")])
        return key

    def owner(token: str, request: Request) -> tuple[Visitor, int]:
        """The visitor and the id of the conversation ``token``; 404 if it is not theirs (or does not exist)."""
        if not valid_token(token):
            raise HTTPException(404, "No such conversation.")
        who = visitor(token, signed_in(request))
        conversation_id = find_conversation_id(context.sessions, team_id=who.team_id, channel_id=who.channel_id,
                                               key=who.key, user_id=who.user_id)
        if conversation_id is None:
            raise HTTPException(404, "No such conversation.")
        return who, conversation_id

    @router.post("/conversations", status_code=201, response_model=Started, summary="Start a conversation")
    def start(request: Request, _client: str = Depends(limited)) -> Started:
        token = new_token()
        who = visitor(token, signed_in(request))
        start_conversation(context.sessions, team_id=who.team_id, channel_id=who.channel_id, key=who.key,
                           user_id=who.user_id, source="web")
        return Started(conversation=token)

    @router.post("/conversations/{token}/messages", summary="Ask; the reply is streamed as Server-Sent Events",
                 response_class=StreamingResponse,
                 responses={200: {"content": {"text/event-stream": {}},
                                  "description": "Events: token (a piece of a model's answer), answer, relay, error"}})
    def ask(token: str, body: Ask, request: Request) -> StreamingResponse:
        enforce(context.sessions, client=client_of(request), limits=[("api", config.request_limit, "requests"),
                                                                     ("ask", config.ask_limit, "questions")])
        who, conversation_id = owner(token, request)
        route = None
        question = Question(team_id=who.team_id, channel_id=who.channel_id, thread_ts=who.key, user_id=who.user_id,
                            source="web", text=body.text)
        if body.topic:
            found = answer_with_topic(context.engine, context.sessions, conversation_id, body.topic)
            if found is None or body.topic not in topics:
                raise HTTPException(422, "Unknown topic.")
            question, route = found[0], Route.certain(body.topic)
        if not answering.acquire(blocking=False):
            raise HTTPException(503, "Too many questions at once: please try again in a few seconds.")

        def events():
            try:
                yield from answer_events(context, question, route=route,
                                         visitor_name=who.signed_in_as or "Web chat visitor")
            finally:
                answering.release()

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"X-Accel-Buffering": "no", "Cache-Control": "no-store"})

    @router.post("/conversations/{token}/feedback", response_model=Recorded, summary="Rate an answer")
    def feedback(token: str, body: Verdict, request: Request, _client: str = Depends(limited)) -> Recorded:
        who, conversation_id = owner(token, request)
        stored = give_feedback(context.sessions, conversation_id=conversation_id, message_id=body.message_id,
                               user_id=who.user_id, kind="helpful" if body.helpful else "not_helpful")
        if not stored:
            raise HTTPException(404, "No such answer in this conversation.")
        return Recorded(stored=True)

    @router.post("/conversations/{token}/escalation", response_model=Escalation, summary="Talk to a human")
    def escalate(token: str, body: HumanRequest, request: Request, _client: str = Depends(limited)) -> Escalation:
        who, conversation_id = owner(token, request)
        contact = f"Web chat visitor, contact: {body.contact}"
        if who.signed_in_as:
            contact += f" (signed in as {who.signed_in_as})"
        details = contact + (f"\n{body.details.strip()}" if body.details and body.details.strip() else "")
        escalated = open_escalation(context.sessions, conversation_id=conversation_id, requester=who.user_id,
                                    urgency=body.urgency, details=details)
        if escalated is None:
            raise HTTPException(404, "No such conversation.")
        number = escalated.escalation_id
        if not escalated.created:
            request_state = latest_request(context.sessions, conversation_id)
            ticket = request_state if request_state is not None and request_state.escalation_id == number else None
            return Escalation(escalation_id=number, status="open",
                              message=f"Your request #{number} is already with the helpdesk.",
                              ticket_id=ticket.ticket_id if ticket else None,
                              ticket_url=ticket.ticket_url if ticket else None)
        org = context.engine.org
        if context.slack is None or not config.escalation_channel:
            log.warning("no helpdesk channel or Slack client for the web chat: escalation %s was stored but not "
                        "posted", number)
            return Escalation(escalation_id=number, status="open", message=(
                f"I've logged your request #{number}. Please also call {org.helpdesk_phone} or email "
                f"{org.helpdesk_email}."))
        try:
            post_escalation(context.slack, context.sessions, channel=config.escalation_channel, escalated=escalated)
        except Exception as error:  # noqa: BLE001 - Slack refused or is unreachable: the request is stored
            log.error("could not post web escalation %s to the helpdesk channel: %s", number,
                      error.__class__.__name__)
            return Escalation(escalation_id=number, status="open", message=(
                f"I've logged your request #{number}, but could not reach the helpdesk right now. Please also call "
                f"{org.helpdesk_phone} or email {org.helpdesk_email}."))
        return Escalation(escalation_id=number, status="open", message=(
            f"I've passed this to the helpdesk as request #{number} (urgency: {body.urgency}). A person will reply "
            "here while this page is open, or contact you."))

    @router.get("/conversations/{token}/updates", response_model=Updates,
                summary="The helpdesk's replies after a message id, and the escalation's status, ticket and rating")
    def updates(token: str, request: Request, after: int = 0, _client: str = Depends(limited)) -> Updates:
        _who, conversation_id = owner(token, request)
        found = updates_since(context.sessions, conversation_id, after_id=max(after, 0))
        state = latest_request(context.sessions, conversation_id)
        return Updates(messages=[AgentMessage(id=i, role=role, text=text) for i, role, text in found.messages],
                       escalation_id=state.escalation_id if state else None,
                       escalation_status=state.status if state else None,
                       ticket_id=state.ticket_id if state else None, ticket_url=state.ticket_url if state else None,
                       satisfaction=state.satisfaction if state else None)

    @router.post("/conversations/{token}/rating", response_model=Recorded,
                 summary="Rate the helpdesk's handling of a resolved request (1-5)")
    def rate(token: str, body: Rating, request: Request, _client: str = Depends(limited)) -> Recorded:
        who, conversation_id = owner(token, request)
        rated = rate_request(context.sessions, conversation_id=conversation_id, escalation_id=body.escalation_id,
                             user_id=who.user_id, rating=body.rating)
        if rated is Rated.NOT_FOUND:
            raise HTTPException(404, "No such request in this conversation.")
        if rated is Rated.NOT_RESOLVED:
            raise HTTPException(409, "Only a resolved request can be rated.")
        return Recorded(stored=True)
    return router

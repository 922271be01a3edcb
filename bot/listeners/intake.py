"""The common path of every question: de-duplicate, rate-limit, hand to the worker."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Callable

from bot.conversation import Question, claim_event
from bot.delivery import apologise, deliver_answer, post_in_place, wait_seconds_text
from bot.worker import Busy

if TYPE_CHECKING:
    from slack_sdk import WebClient

    from bot.services import Services
    from answers.router import Route

__all__ = ["take_question", "run_for_user"]

log = logging.getLogger(__name__)


def take_question(services: "Services", client: "WebClient", question: Question, *, event_id: str | None,
                  reply_channel: str, reply_thread_ts: str | None, ephemeral: bool = False,
                  route: "Route | None" = None, response_url: str | None = None) -> None:
    """Queue ``question`` for an answer; returns at once (called on Bolt's listener threads).

    Even the event-id check runs on the worker: a database write here would hold up the acks of the
    envelopes behind this one.
    """
    where = {"channel": reply_channel, "thread_ts": reply_thread_ts, "user_id": question.user_id, "ephemeral": ephemeral,
             "response_url": response_url}

    def job() -> None:
        if event_id is not None and not claim_event(services.sessions, event_id):
            log.info("ignoring redelivered event %s", event_id)
            return
        wait = services.limiter.check(question.user_id)
        if wait:
            post_in_place(client, **where, message={"text": (
                f":hourglass: You're asking faster than I can keep up with ({services.settings.rate_limit}). "
                f"Please try again in {wait_seconds_text(wait)}.")})
            return
        deliver_answer(services, client, question, reply_channel=reply_channel, reply_thread_ts=reply_thread_ts,
                       ephemeral=ephemeral, route=route, response_url=response_url)

    run_for_user(services, client, job, **where)


def run_for_user(services: "Services", client: "WebClient", job: Callable[[], None], *, channel: str,
                 thread_ts: str | None, user_id: str, ephemeral: bool, response_url: str | None = None) -> None:
    """Run ``job`` on the worker; the user is told when it fails (apology) or the queue is full."""
    where = {"channel": channel, "thread_ts": thread_ts, "user_id": user_id, "ephemeral": ephemeral,
             "response_url": response_url}

    def on_error(reference: str, _error: BaseException) -> None:
        services.metrics.errors.inc()
        apologise(client, reference=reference, **where)

    try:
        services.worker.submit(job, on_error=on_error)
    except Busy:
        post_in_place(client, **where, message={"text": (
            ":hourglass: I'm handling a lot of questions right now and couldn't take yours. "
            "Please send it again in a minute, or press *Talk to a human*.")})

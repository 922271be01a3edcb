"""The common path of every question: stored, rate-limited, answered once on the worker.

The durable intake (:func:`durable_intake`) stores a DM or @mention before Bolt acknowledges the envelope;
commands and topic buttons are stored by their listeners, right after their ``ack()``; the message shortcut's
question before its ``ack()``, with the DM post that will open its thread (:func:`take_quoted`). A stored question is
answered by whichever process holds it (:mod:`bot.inbox`); :func:`recover` takes over the questions of processes
that stopped. When the database refuses the write, the question is answered from memory as before, and the
answer path meets the same database fault (an apology with a reference).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Callable

from sqlalchemy.exc import SQLAlchemyError

from bot import inbox
from bot.conversation import Question, claim_event
from bot.delivery import apologise, deliver_answer, post_in_place, wait_seconds_text
from bot.incoming import Incoming, incoming_question
from bot.posting import find_posts, post_once
from bot.worker import Busy
from storage.types import utcnow

if TYPE_CHECKING:
    from slack_sdk import WebClient
    from sqlalchemy.orm import Session, sessionmaker

    from answers.router import Route
    from bot.services import Services
    from storage.models import PendingQuestion

__all__ = ["INCOMING", "MAX_AGE", "Received", "durable_intake", "receive", "take_question", "take_quoted",
           "run_for_user", "recover"]

log = logging.getLogger(__name__)
INCOMING = "itbot_incoming"  # the Bolt context key the durable intake leaves for the listeners
MAX_AGE = timedelta(hours=1)  # older than this, a question found unanswered gets "please ask again", not an answer


@dataclass(frozen=True, slots=True)
class Received:
    """A question taken in: where it goes, and its stored row (None when the database refused it)."""

    incoming: Incoming
    stored: inbox.Stored | None
    event_id: str | None = None
    ephemeral: bool = False
    topic: str | None = None


def durable_intake(services: "Services") -> Callable[..., Any]:
    """Bolt middleware: store the question an event carries before Bolt acknowledges the envelope.

    Slack's Socket Mode sends the acknowledgement after the middleware chain returns, so a question Slack
    considers delivered is on disk. The listener finds it under ``context[INCOMING]``.
    """
    def middleware(body: dict[str, Any], context: dict[str, Any], next: Callable[[], Any]) -> Any:  # noqa: A002
        if body.get("type") == "event_callback":
            incoming = incoming_question(body, bot_user_id=services.bot_user_id)
            if incoming is not None:
                context[INCOMING] = receive(services, incoming, event_id=body.get("event_id"))
        return next()

    return middleware


def receive(services: "Services", incoming: Incoming, *, event_id: str | None, ephemeral: bool = False,
            topic: str | None = None, quote: str | None = None) -> Received:
    """Store ``incoming``, waiting at most about a second for a lock; on a fault it is stored later, by the worker.

    ``quote`` is the DM post still to be made that opens the question's thread (see :func:`take_quoted`).

    Returns:
        The question with its row, or with ``stored`` None (the worker tries again, then answers from memory).
    """
    try:
        stored = _store(services.intake_sessions or services.sessions, incoming, event_id=event_id,
                        ephemeral=ephemeral, topic=topic, quote=quote)
    except SQLAlchemyError as error:
        log.warning("could not store a question before acknowledging it (%s); storing it on the worker",
                    error.__class__.__name__)
        stored = None
    return Received(incoming, stored, event_id, ephemeral, topic)


def _store(sessions: "sessionmaker[Session]", incoming: Incoming, *, event_id: str | None, ephemeral: bool,
           topic: str | None, quote: str | None = None) -> inbox.Stored:
    return inbox.store(sessions, incoming.question, event_id=event_id, reply_channel=incoming.reply_channel,
                       reply_thread_ts=incoming.reply_thread_ts, ephemeral=ephemeral, topic=topic, quote=quote)


def take_question(services: "Services", client: "WebClient", received: Received, *, route: "Route | None" = None,
                  response_url: str | None = None) -> None:
    """Queue the question for an answer; returns at once (called on Bolt's listener threads)."""
    incoming, stored, event_id = received.incoming, received.stored, received.event_id
    where = _where(incoming, received.ephemeral, response_url)
    if stored is not None:
        if stored.queue and not run_for_user(services, client, lambda: _answer_stored(
                services, client, stored.id, incoming.question, where, route=route), **where):
            _finish_quietly(services, stored.id, "refused")  # the user was told to send it again
        return

    def store_then_answer() -> None:
        try:  # the lock may be gone by now (this thread can wait for it)
            late = _store(services.sessions, incoming, event_id=event_id, ephemeral=received.ephemeral,
                          topic=received.topic)
        except SQLAlchemyError as error:
            log.warning("could not store a question (%s); answering it from memory", error.__class__.__name__)
        else:
            if late.queue:
                _answer_stored(services, client, late.id, incoming.question, where, route=route)
            return
        if event_id is not None and not claim_event(services.sessions, event_id):
            log.info("ignoring redelivered event %s", event_id)
            return
        if _rate_limited(services, client, incoming.question.user_id, where):
            return
        deliver_answer(services, client, incoming.question, reply_channel=where["channel"],
                       reply_thread_ts=where["thread_ts"], ephemeral=received.ephemeral, route=route,
                       response_url=response_url)

    run_for_user(services, client, store_then_answer, **where)


def take_quoted(services: "Services", client: "WebClient", stored: inbox.Stored, question: Question, *,
                quote: str, channel: str, user_id: str, response_url: str | None = None,
                route: "Route | None" = None, ephemeral: bool = True) -> None:
    """Queue a stored question whose DM thread is still to be opened: ``quote`` is posted in the user's DM, then
    the question is answered in its thread (a message shortcut's or a Home tab form's question, stored before the
    ack; ``route``: the topic the user picked).

    Until the DM post exists, a failure is told where the user was (``channel``: privately, or through
    ``response_url``; ``ephemeral=False`` when ``channel`` is the user's own id, i.e. their DM).
    """
    if stored.queue and not run_for_user(services, client, lambda: _answer_stored(
            services, client, stored.id, question, None, route=route, quote=quote), channel=channel,
            thread_ts=None, user_id=user_id, ephemeral=ephemeral, response_url=response_url):
        _finish_quietly(services, stored.id, "refused")


def recover(services: "Services", client: "WebClient") -> int:
    """Queue the unanswered questions of stopped processes (at start-up, then every few seconds)."""
    from answers.router import Route

    try:
        rows = inbox.orphans(services.sessions)
    except SQLAlchemyError as error:
        log.warning("could not look for unanswered questions (%s)", error.__class__.__name__)
        return 0
    for row in rows:
        question = Question(team_id=row.team_id, channel_id=row.channel_id, thread_ts=row.thread_ts,
                            user_id=row.user_id, source=row.source, text=row.text, message_ts=row.message_ts)
        route = Route.certain(row.topic) if row.topic else None
        # A question whose DM post is not made yet has no channel: an apology goes to the user's DM (its user id).
        where = _where(Incoming(question, row.reply_channel or row.user_id, row.reply_thread_ts), row.ephemeral,
                       None)
        run_for_user(services, client, _recovered_job(services, client, row, question, where, route), **where)
    return len(rows)


def _recovered_job(services: "Services", client: "WebClient", row: "PendingQuestion", question: Question,
                   where: dict[str, Any], route: "Route | None") -> Callable[[], None]:
    return lambda: _answer_stored(services, client, row.id, question, where, route=route, recovered=True,
                                  quote=row.quote)


def _answer_stored(services: "Services", client: "WebClient", question_id: int, question: Question,
                   where: dict[str, Any] | None, *, route: "Route | None", recovered: bool = False,
                   quote: str | None = None) -> None:
    """Answer a stored question once: begun by compare-and-set, finished with its outcome.

    With ``quote`` the question's DM thread is opened first (``where`` is then unknown until it is).
    """
    started = inbox.start(services.sessions, question_id)
    if started is None:
        log.info("question %d is answered elsewhere", question_id)
        return
    outcome = "failed"  # an exception: the worker apologises with a reference
    try:
        if quote is not None:
            question, where = _open_thread(services, client, started, question, quote)
        assert where is not None
        outcome = _answer_started(services, client, started, question, where, route=route, recovered=recovered)
    finally:
        _finish_quietly(services, question_id, outcome)


def _open_thread(services: "Services", client: "WebClient", started: inbox.Started, question: Question,
                 quote: str) -> tuple[Question, dict[str, Any]]:
    """Post ``quote`` in the user's DM (once: an earlier attempt may have posted it) and make its thread the
    question's; the row remembers it, so a later attempt answers in the same thread."""
    dm = client.conversations_open(users=question.user_id)["channel"]["id"]
    post_id = f"question-{started.id}-quote"
    posted = find_posts(client, dm, None, {post_id}).get(post_id) if started.attempt > 1 else None
    ts = posted["ts"] if posted else post_once(client, channel=dm, post_id=post_id, text=quote)["ts"]
    try:
        inbox.quote_posted(services.sessions, started.id, channel=dm, ts=ts)
    except SQLAlchemyError as error:  # answered in this thread anyway; a later attempt finds the quote by its id
        log.warning("could not record the DM thread of question %d (%s)", started.id, error.__class__.__name__)
    question = replace(question, channel_id=dm, thread_ts=ts)
    return question, _where(Incoming(question, dm, ts), False, None)


def _finish_quietly(services: "Services", question_id: int, outcome: str) -> None:
    try:
        inbox.finish(services.sessions, question_id, outcome)
    except SQLAlchemyError as error:  # it stays unfinished: a restart answers it, late rather than never
        log.warning("could not mark question %d %s (%s)", question_id, outcome, error.__class__.__name__)


def _answer_started(services: "Services", client: "WebClient", started: inbox.Started, question: Question,
                    where: dict[str, Any], *, route: "Route | None", recovered: bool) -> str:
    post_id = f"question-{started.id}"
    if utcnow() - started.received_at > MAX_AGE:
        post_in_place(client, **where, post_id=f"{post_id}-expired", message={"text": (
            f":hourglass: I was unavailable when you asked this at {started.received_at:%H:%M} UTC, and it is too "
            "late for my answer to be useful. If you still need help, please ask again.")})
        return "expired"
    if started.attempt > inbox.MAX_ATTEMPTS:
        post_in_place(client, **where, post_id=f"{post_id}-given-up", message={"text": (
            ":warning: I couldn't answer this question after several tries. Please ask again in other words, or "
            "use /itsupport status to reach the helpdesk.")})
        return "failed"
    if started.attempt > 1 and not where["ephemeral"] and _posted_before(client, where, post_id,
                                                                         streamed_ts=started.streamed_ts):
        return "answered"
    if not recovered and _rate_limited(services, client, question.user_id, where):
        return "rate limited"
    deliver_answer(services, client, question, reply_channel=where["channel"], reply_thread_ts=where["thread_ts"],
                   ephemeral=where["ephemeral"], route=route, response_url=where["response_url"],
                   notice=inbox.late_notice(started.received_at), post_id=post_id,
                   on_stream_started=lambda ts: _record_stream(services, started.id, ts))
    return "answered"


def _record_stream(services: "Services", question_id: int, ts: str) -> None:
    """Remember the message the answer streams into; called on the streaming path, so it never raises."""
    try:
        inbox.stream_started(services.sessions, question_id, ts)
    except SQLAlchemyError as error:  # only a crash before the answer is complete would leave half of it behind
        log.warning("could not record the streamed message of question %d (%s)", question_id,
                    error.__class__.__name__)


def _posted_before(client: "WebClient", where: dict[str, Any], post_id: str, *, streamed_ts: str | None = None) -> bool:
    """Whether an earlier attempt posted the answer; what it left half done is removed: a "Looking into it…"
    placeholder (or a posted preview), and the message it began streaming into (``streamed_ts``)."""
    found = find_posts(client, where["channel"], where["thread_ts"], {f"{post_id}-0", f"{post_id}-placeholder"})
    if f"{post_id}-0" in found:
        log.info("%s was answered before the restart; not answering it twice", post_id)
        return True
    stale = {found[f"{post_id}-placeholder"]["ts"]} if f"{post_id}-placeholder" in found else set()
    for ts in sorted(stale | ({streamed_ts} if streamed_ts else set())):
        try:
            client.chat_delete(channel=where["channel"], ts=ts)
        except Exception as error:  # noqa: BLE001 - a stale placeholder is untidy, not harmful
            log.warning("could not remove a half-finished reply %s: %s", ts, error.__class__.__name__)
    return False


def _rate_limited(services: "Services", client: "WebClient", user_id: str, where: dict[str, Any]) -> bool:
    wait = services.limiter.check(user_id)
    if wait:
        post_in_place(client, **where, message={"text": (
            f":hourglass: You're asking faster than I can keep up with ({services.settings.rate_limit}). "
            f"Please try again in {wait_seconds_text(wait)}.")})
    return bool(wait)


def _where(incoming: Incoming, ephemeral: bool, response_url: str | None) -> dict[str, Any]:
    return {"channel": incoming.reply_channel, "thread_ts": incoming.reply_thread_ts,
            "user_id": incoming.question.user_id, "ephemeral": ephemeral, "response_url": response_url}


def run_for_user(services: "Services", client: "WebClient", job: Callable[[], None], *, channel: str,
                 thread_ts: str | None, user_id: str, ephemeral: bool, response_url: str | None = None) -> bool:
    """Run ``job`` on the worker; the user is told when it fails (apology) or the queue is full (False)."""
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
        return False
    return True

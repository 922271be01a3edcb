"""Durable intake, the use cases: store a question before Slack is acknowledged, answer each exactly once.

Slack does not redeliver an event it saw acknowledged, so a question kept only in memory dies with the
process (a `kill -9` in the middle of a burst lost 92 of 100). Each question is stored first (``storage.inbox``)
with this process as its *holder*. A restarted process, or another replica, takes over the unfinished questions
of holders that are gone: a process on this host that no longer runs (immediately), or any holder silent for
:data:`LEASE_S` (another host, which cannot be asked). Answering begins with a compare-and-set, so two jobs never
answer the same question.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from storage import inbox
from storage.types import utcnow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from bot.conversation import Question
    from storage.models import PendingQuestion

__all__ = ["HOLDER", "LEASE_S", "LATE_S", "MAX_ATTEMPTS", "Stored", "Started", "holder_alive", "store", "start",
           "stream_started", "quote_posted", "finish", "orphans", "late_notice"]

log = logging.getLogger(__name__)
HOST, PID = socket.gethostname(), os.getpid()
HOLDER = f"{HOST}:{PID}:{uuid.uuid4().hex[:8]}"  # this process; the nonce tells a restarted pid 1 from its past life
LEASE_S = 300  # a holder on another host silent this long is presumed gone (longer than any answer takes)
LATE_S = 30  # an answer this much later than the question says sorry for the wait
MAX_ATTEMPTS = 3  # a question that killed the process this often is not tried again (it may be what kills it)
KEEP_FINISHED = timedelta(days=1)  # long enough to recognise any redelivery


@dataclass(frozen=True, slots=True)
class Stored:
    """A question on disk: its row id, and whether this process should queue it now."""

    id: int
    queue: bool


@dataclass(frozen=True, slots=True)
class Started:
    """A question this process has begun to answer; ``streamed_ts`` the message an earlier attempt streamed into."""

    id: int
    attempt: int
    received_at: datetime
    text: str
    streamed_ts: str | None = None


def holder_alive(holder: str, held_at: datetime, *, now: datetime | None = None) -> bool:
    """Whether the process ``holder`` may still answer what it holds."""
    if holder == HOLDER:
        return True
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    if host == HOST and pid_text.isdigit():
        pid = int(pid_text)
        if pid == PID:  # this pid's earlier life (a container restarted as pid 1)
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # alive, another user's
            return True
        return True
    return (now or utcnow()) - held_at < timedelta(seconds=LEASE_S)


def store(sessions: "sessionmaker[Session]", question: "Question", *, event_id: str | None, reply_channel: str,
          reply_thread_ts: str | None, ephemeral: bool, topic: str | None = None, quote: str | None = None) -> Stored:
    """Store ``question``; for a redelivered event, queue it again only when its holder is gone (taken over).

    ``quote`` is the DM post still to be made that opens the question's thread (see :func:`quote_posted`).
    """
    with sessions.begin() as session:
        row, new = inbox.store_question(
            session, event_id=event_id, team_id=question.team_id, channel_id=question.channel_id,
            thread_ts=question.thread_ts, user_id=question.user_id, source=question.source, text=question.text,
            topic=topic, reply_channel=reply_channel, reply_thread_ts=reply_thread_ts, ephemeral=ephemeral,
            holder=HOLDER, message_ts=question.message_ts, quote=quote)
        if new:
            return Stored(row.id, queue=True)
        if row.finished_at is not None or holder_alive(row.holder, row.held_at):
            log.info("ignoring redelivered event %s (question %d is %s)", event_id, row.id,
                     row.outcome or "being answered")
            return Stored(row.id, queue=False)
        taken = inbox.take_over_question(session, row, holder=HOLDER)
        if taken:
            log.info("redelivered event %s: taking over question %d from %s", event_id, row.id, row.holder)
        return Stored(row.id, queue=taken)


def start(sessions: "sessionmaker[Session]", question_id: int) -> Started | None:
    """Begin answering a stored question; None when another job has it or it is done."""
    with sessions.begin() as session:
        row = inbox.start_question(session, question_id, holder=HOLDER)
        if row is None:
            return None
        return Started(row.id, row.attempts, row.received_at, row.text, row.streamed_ts)


def stream_started(sessions: "sessionmaker[Session]", question_id: int, ts: str) -> None:
    """Record that the answer began streaming into message ``ts``: a restart finds (and removes) a half answer."""
    with sessions.begin() as session:
        inbox.record_stream(session, question_id, ts=ts)


def quote_posted(sessions: "sessionmaker[Session]", question_id: int, *, channel: str, ts: str) -> None:
    """Record the DM post that opens the question's thread (a shortcut's question is stored before it exists)."""
    with sessions.begin() as session:
        inbox.record_quote(session, question_id, channel=channel, ts=ts)


def finish(sessions: "sessionmaker[Session]", question_id: int, outcome: str) -> None:
    with sessions.begin() as session:
        inbox.finish_question(session, question_id, outcome=outcome)


def orphans(sessions: "sessionmaker[Session]") -> list["PendingQuestion"]:
    """Unfinished questions whose holder is gone, now held by this process (to be queued); old finished rows go."""
    now = utcnow()
    with sessions.begin() as session:
        inbox.forget_finished_questions(session, now - KEEP_FINISHED)
        taken = []
        for row in inbox.unfinished_questions(session):
            if not holder_alive(row.holder, row.held_at, now=now) and inbox.take_over_question(session, row,
                                                                                               holder=HOLDER):
                taken.append(row)
    if taken:
        log.info("took over %d unanswered question(s) from stopped instances", len(taken))
    return taken


def late_notice(received_at: datetime, *, now: datetime | None = None) -> str | None:
    """The apology for a late answer, or None when it is on time."""
    waited = ((now or utcnow()) - received_at).total_seconds()
    if waited < LATE_S:
        return None
    when = received_at.strftime("%H:%M UTC")
    return f"Sorry for the wait: I was restarting when you asked this at {when}."

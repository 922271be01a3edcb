"""Questions taken from Slack and not answered yet: the durable intake.

A row is written before Slack hears that the question arrived, and finished once the user has their answer.
Ownership changes by compare-and-set updates (one statement each), so two threads or two instances racing
for the same question get exactly one winner, as with the once-only records in :mod:`storage.idempotency`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, delete, event, select, update
from sqlalchemy.orm import Session, sessionmaker

from answers.redact import redact
from storage.idempotency import insert_new
from storage.models import PendingQuestion
from storage.types import utcnow

INTAKE_WAIT_S = 1.0  # the longest a question's write may wait for a lock: Slack wants its ack within 3 s


def intake_sessions(engine: Engine) -> sessionmaker[Session]:
    """Sessions on the same database that give up after :data:`INTAKE_WAIT_S` when another writer holds a lock.

    The intake writes before Slack is acknowledged; a database locked for longer must not make the ack late
    (Slack would retry, or tell the user the app did not respond): the caller falls back to writing later.
    """
    from storage.db import make_engine

    quick = make_engine(engine.url.render_as_string(hide_password=False))
    wait_ms = int(INTAKE_WAIT_S * 1000)

    @event.listens_for(quick, "connect")
    def _short_waits(dbapi_connection, _record) -> None:  # noqa: ANN001 - DB-API connection
        cursor = dbapi_connection.cursor()
        if quick.dialect.name == "sqlite":
            cursor.execute(f"PRAGMA busy_timeout={wait_ms}")
        elif quick.dialect.name == "postgresql":
            cursor.execute(f"SET lock_timeout = {wait_ms}")
            cursor.execute(f"SET statement_timeout = {2 * wait_ms}")
        cursor.close()
        if quick.dialect.name == "postgresql":
            dbapi_connection.commit()

    return sessionmaker(quick, expire_on_commit=False)

__all__ = ["INTAKE_WAIT_S", "intake_sessions", "store_question", "take_over_question", "start_question",
           "record_stream", "record_quote", "finish_question", "unfinished_questions", "forget_finished_questions"]


def store_question(session: Session, *, event_id: str | None, team_id: str, channel_id: str, thread_ts: str,
                   user_id: str, source: str, text: str, reply_channel: str, reply_thread_ts: str | None,
                   ephemeral: bool, holder: str, topic: str | None = None, message_ts: str | None = None,
                   quote: str | None = None) -> tuple[PendingQuestion, bool]:
    """Store a question (its text and ``quote`` redacted) held by ``holder``.

    ``quote`` is the DM post still to be made whose thread the answer goes to (a message shortcut's question).

    Returns:
        The row and True; for an event id stored before (Slack redelivered it), the first row and False.
    """
    now = utcnow()
    row = insert_new(session, PendingQuestion, event_id=event_id, team_id=team_id, channel_id=channel_id,
                     thread_ts=thread_ts, user_id=user_id, source=source, text=redact(text).text, topic=topic,
                     reply_channel=reply_channel, reply_thread_ts=reply_thread_ts, ephemeral=ephemeral,
                     received_at=now, holder=holder, held_at=now, attempts=0, message_ts=message_ts,
                     quote=None if quote is None else redact(quote).text)
    if row is not None:
        return row, True
    return session.scalars(select(PendingQuestion).where(PendingQuestion.event_id == event_id)).one(), False


def take_over_question(session: Session, row: PendingQuestion, *, holder: str) -> bool:
    """Make ``holder`` responsible for an unfinished question whose holder is gone; False if someone was faster.

    The update only applies while the row still has the holder the caller saw, so of several instances taking
    over the same question one wins. An answer the old holder had begun is begun again.
    """
    result = session.execute(
        update(PendingQuestion)
        .where(PendingQuestion.id == row.id, PendingQuestion.holder == row.holder,
               PendingQuestion.held_at == row.held_at, PendingQuestion.finished_at.is_(None))
        .values(holder=holder, held_at=utcnow(), started_at=None),
        execution_options={"synchronize_session": False})
    return result.rowcount == 1


def start_question(session: Session, question_id: int, *, holder: str) -> PendingQuestion | None:
    """Begin answering: the row, its ``attempts`` counted, or None when ``holder`` no longer holds it, another
    job of the same holder began it already, or it is finished."""
    result = session.execute(
        update(PendingQuestion)
        .where(PendingQuestion.id == question_id, PendingQuestion.holder == holder,
               PendingQuestion.started_at.is_(None), PendingQuestion.finished_at.is_(None))
        .values(started_at=utcnow(), attempts=PendingQuestion.attempts + 1),
        execution_options={"synchronize_session": False})
    if result.rowcount != 1:
        return None
    return session.get(PendingQuestion, question_id, populate_existing=True)


def record_stream(session: Session, question_id: int, *, ts: str) -> None:
    """Remember that the answer began streaming into message ``ts`` (a later attempt removes it if unfinished)."""
    session.execute(update(PendingQuestion).where(PendingQuestion.id == question_id).values(streamed_ts=ts),
                    execution_options={"synchronize_session": False})


def record_quote(session: Session, question_id: int, *, channel: str, ts: str) -> None:
    """The question's DM quote is posted: message ``ts`` in DM ``channel`` is its conversation and reply thread."""
    session.execute(update(PendingQuestion).where(PendingQuestion.id == question_id)
                    .values(channel_id=channel, thread_ts=ts, reply_channel=channel, reply_thread_ts=ts, quote=None),
                    execution_options={"synchronize_session": False})


def finish_question(session: Session, question_id: int, *, outcome: str) -> None:
    """Mark a question done (``answered``, ``expired``, ``failed``, ``rate limited``...)."""
    session.execute(update(PendingQuestion).where(PendingQuestion.id == question_id,
                                                  PendingQuestion.finished_at.is_(None))
                    .values(finished_at=utcnow(), outcome=outcome), execution_options={"synchronize_session": False})


def unfinished_questions(session: Session, *, limit: int = 500) -> list[PendingQuestion]:
    """Questions not finished yet, oldest first."""
    return list(session.scalars(select(PendingQuestion).where(PendingQuestion.finished_at.is_(None))
                                .order_by(PendingQuestion.id).limit(limit)))


def forget_finished_questions(session: Session, before: datetime) -> int:
    """Delete questions finished before ``before``; returns how many."""
    return session.execute(delete(PendingQuestion).where(PendingQuestion.finished_at < before),
                           execution_options={"synchronize_session": False}).rowcount

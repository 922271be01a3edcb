"""Once-only records: Slack event ids and scheduled-job locks.

Both rely on a unique key rather than on a read-then-write, so two threads or
two bot instances racing on the same key get exactly one winner. On SQLite
and PostgreSQL the insert is ``INSERT ... ON CONFLICT DO NOTHING`` (one
statement: the hot path of every Slack event); elsewhere, and for callers
that hold an ORM row (:func:`insert_once`), it runs in a SAVEPOINT, so a
loser's failed insert leaves the caller's transaction usable.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.models import Base, JobLock, ProcessedEvent
from storage.types import utcnow

__all__ = ["insert_once", "insert_new", "mark_event_processed", "acquire_job_lock"]

Row = TypeVar("Row", bound=Base)


def _on_conflict_do_nothing(session: Session, model: type[Base], values: dict[str, Any]) -> Insert | None:
    """``INSERT ... ON CONFLICT DO NOTHING`` for this session's database, or None where it has none."""
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    elif dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        return None
    return insert(model).values(**values).on_conflict_do_nothing()


def insert_new(session: Session, model: type[Row], **values: Any) -> Row | None:
    """Insert a ``model`` row with ``values``; return it, or None when a unique key says it exists already.

    Args:
        session: The caller's session; its transaction survives a duplicate.
        model: The mapped class.
        values: Column values; columns left out get their defaults.

    Returns:
        The new row (in the session, with its id), or None if the key was taken.
    """
    statement = _on_conflict_do_nothing(session, model, values)
    if statement is None:
        row = model(**values)
        return row if insert_once(session, row) else None
    return session.scalars(statement.returning(model)).one_or_none()


def insert_once(session: Session, row: Base) -> bool:
    """Insert ``row`` unless a unique key says it exists already.

    Args:
        session: The caller's session; its transaction survives a duplicate.
        row: A new model instance.

    Returns:
        True if this call inserted the row, False if the key was taken.
    """
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        return False
    return True


def mark_event_processed(session: Session, event_id: str, *, received_at: datetime | None = None) -> bool:
    """Record a Slack event id; False means it was seen before and the event must be dropped.

    The record becomes visible to other instances when the caller commits, so
    commit before the slow work (answering), not after it.

    Args:
        session: The caller's session.
        event_id: Slack's ``event_id`` (or another stable key for the delivery).
        received_at: When it arrived; now by default.

    Returns:
        True for the first delivery, False for a redelivery.
    """
    return insert_new(session, ProcessedEvent, event_id=event_id, received_at=received_at or utcnow()) is not None


def acquire_job_lock(session: Session, *, name: str, period_key: str, holder: str) -> bool:
    """Claim one period of a scheduled job (e.g. ``("digest", "2025-06-01")``) for ``holder``.

    Several bot instances share one database; each calls this when its
    scheduler fires and only the one that gets True runs the job. Commit
    straight away so the others see the claim.

    Args:
        session: The caller's session.
        name: The job's name.
        period_key: Identifies the run, e.g. the local date of a nightly job.
        holder: Who claims it (host name and process id), kept for diagnosis.

    Returns:
        True if this caller won the period, False if another holder has it.
    """
    return insert_new(session, JobLock, name=name, period_key=period_key, holder=holder) is not None

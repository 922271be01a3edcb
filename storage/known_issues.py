"""Known issues: outage notices agents post for a topic, shown above the bot's answers on it until they end.

A notice ends when an agent clears it or when it expires (``expires_at``); at most one is active per topic, so
posting a new one for a topic replaces the one before (cleared by whoever posted the new one).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from answers.redact import redact
from storage.models import KnownIssue
from storage.types import utcnow

__all__ = ["add_known_issue", "active_known_issues", "clear_known_issues"]


def _active(now: datetime):
    return KnownIssue.cleared_at.is_(None), KnownIssue.expires_at > now


def add_known_issue(session: Session, *, topic: str, text: str, created_by: str, expires_at: datetime,
                    now: datetime | None = None) -> KnownIssue:
    """Post a notice for ``topic``, replacing the active one of that topic if there is one.

    Args:
        session: The caller's session.
        topic: A built-in topic name or an article's own topic, as the answers name it.
        text: What is wrong; redacted before storing.
        created_by: The agent's Slack user id, or ``cli:<name>``.
        expires_at: When the notice ends unless cleared before.
        now: The current time (tests pass a fixed clock).

    Returns:
        The stored notice, its id set.
    """
    now = now or utcnow()
    clear_known_issues(session, topic=topic, cleared_by=created_by, now=now)
    issue = KnownIssue(topic=topic, text=redact(text).text, created_by=created_by, created_at=now,
                       expires_at=expires_at)
    session.add(issue)
    session.flush()
    return issue


def active_known_issues(session: Session, *, now: datetime | None = None) -> list[KnownIssue]:
    """The notices in force at ``now`` (default: the current time), oldest first."""
    query = select(KnownIssue).where(*_active(now or utcnow())).order_by(KnownIssue.created_at, KnownIssue.id)
    return list(session.scalars(query).all())


def clear_known_issues(session: Session, *, cleared_by: str, topic: str | None = None, issue_id: int | None = None,
                       now: datetime | None = None) -> list[KnownIssue]:
    """End the active notices of ``topic`` or the one numbered ``issue_id``; those it ended (none: nothing active).

    Args:
        session: The caller's session.
        cleared_by: Who ended them (a Slack user id or ``cli:<name>``).
        topic: End the active notice of this topic.
        issue_id: End this notice, if still active.
        now: The current time (tests pass a fixed clock).
    """
    if topic is None and issue_id is None:
        raise ValueError("give a topic or an issue id")
    now = now or utcnow()
    which = or_(KnownIssue.topic == topic, KnownIssue.id == issue_id)
    ended = list(session.scalars(select(KnownIssue).where(which, *_active(now))).all())
    if ended:
        session.execute(update(KnownIssue).where(KnownIssue.id.in_([i.id for i in ended]))
                        .values(cleared_at=now, cleared_by=cleared_by).execution_options(synchronize_session="fetch"))
    return ended

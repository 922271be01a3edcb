"""A rate limiter whose counts live in the database, so every replica of the web chat shares them.

Fixed windows: one row per (client key, window), incremented with one ``INSERT ... ON CONFLICT DO UPDATE``
statement (SQLite 3.24+ and PostgreSQL), so concurrent requests from one client are all counted and no
read-then-write race lets a burst through. Expired rows are deleted now and then by the hits themselves.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from storage.models import RateLimitWindow

__all__ = ["RateDecision", "hit", "SWEEP_PROBABILITY"]

SWEEP_PROBABILITY = 0.01  # one hit in a hundred deletes the expired windows


@dataclass(frozen=True, slots=True)
class RateDecision:
    """Whether a request may go on; if not, how many seconds until the client's window ends."""

    allowed: bool
    retry_after_s: float = 0.0
    remaining: int = 0


def _upsert(session: Session, *, key: str, window: int, expires_at: int) -> int | None:
    """Add one hit to the window in one statement; its new count, or None where the database has no upsert."""
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    elif dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        return None
    statement = insert(RateLimitWindow).values(key=key, window=window, hits=1, expires_at=expires_at)
    statement = statement.on_conflict_do_update(index_elements=["key", "window"],
                                                set_={"hits": RateLimitWindow.hits + 1})
    return session.scalar(statement.returning(RateLimitWindow.hits))


def hit(session: Session, key: str, *, limit: int, period_s: int, now: float | None = None) -> RateDecision:
    """Count one request of ``key``; allowed while the window holds at most ``limit`` of them.

    Args:
        session: The caller's session (the caller commits).
        key: The client and what it does, e.g. ``"ask:203.0.113.7"``; at most 200 characters are kept.
        limit: Requests allowed per window.
        period_s: The window's length in seconds.
        now: Epoch seconds (tests); the current time by default.
    """
    now = time.time() if now is None else now
    key = key[:200]
    window = int(now // period_s)
    ends = (window + 1) * period_s
    count = _upsert(session, key=key, window=window, expires_at=int(ends))
    if count is None:  # a database without upsert: read, then write (good enough for one process)
        row = session.scalars(select(RateLimitWindow).where(RateLimitWindow.key == key,
                                                            RateLimitWindow.window == window)).one_or_none()
        if row is None:
            session.add(RateLimitWindow(key=key, window=window, hits=1, expires_at=int(ends)))
            count = 1
        else:
            session.execute(update(RateLimitWindow).where(RateLimitWindow.key == key, RateLimitWindow.window == window)
                            .values(hits=RateLimitWindow.hits + 1))
            count = row.hits + 1
    if random.random() < SWEEP_PROBABILITY:
        session.execute(delete(RateLimitWindow).where(RateLimitWindow.expires_at < int(now)))
    if count > limit:
        return RateDecision(allowed=False, retry_after_s=max(ends - now, 1.0))
    return RateDecision(allowed=True, remaining=limit - count)

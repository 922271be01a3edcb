"""A rate limiter whose counts live in the database, so every replica of the bot and the web chat shares them.

Windows of a fixed length: one row per (client key, window), incremented with one ``INSERT ... ON CONFLICT DO
UPDATE`` statement (SQLite 3.24+ and PostgreSQL), so concurrent requests from one client are all counted and no
read-then-write race lets a burst through. Expired rows are deleted now and then by the hits themselves.

Two ways to decide on the counts:

- :func:`hit` (the web chat): fixed windows, and a refused request still counts.
- :func:`hit_sliding` (Slack questions): the sliding-window counter, which weighs the previous window's count by
  how much of it still lies within one period of now, so a burst across a window's end is not let through twice;
  a refused question is not counted, so "try again in N seconds" holds.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from storage.models import RateLimitWindow

__all__ = ["RateDecision", "hit", "hit_sliding", "SWEEP_PROBABILITY"]

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


def _count(session: Session, *, key: str, window: int, expires_at: int, now: float) -> int:
    """Add one hit to the window; its new count. Sweeps the expired windows now and then."""
    count = _upsert(session, key=key, window=window, expires_at=expires_at)
    if count is None:  # a database without upsert: read, then write (good enough for one process)
        row = session.scalars(select(RateLimitWindow).where(RateLimitWindow.key == key,
                                                            RateLimitWindow.window == window)).one_or_none()
        if row is None:
            session.add(RateLimitWindow(key=key, window=window, hits=1, expires_at=expires_at))
            count = 1
        else:
            session.execute(update(RateLimitWindow).where(RateLimitWindow.key == key, RateLimitWindow.window == window)
                            .values(hits=RateLimitWindow.hits + 1))
            count = row.hits + 1
    if random.random() < SWEEP_PROBABILITY:
        session.execute(delete(RateLimitWindow).where(RateLimitWindow.expires_at < int(now)))
    return count


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
    window = int(now // period_s)
    ends = (window + 1) * period_s
    count = _count(session, key=key[:200], window=window, expires_at=int(ends), now=now)
    if count > limit:
        return RateDecision(allowed=False, retry_after_s=max(ends - now, 1.0))
    return RateDecision(allowed=True, remaining=limit - count)


def hit_sliding(session: Session, key: str, *, limit: int, period_s: int, now: float | None = None) -> RateDecision:
    """Count one request of ``key`` if the last ``period_s`` seconds hold fewer than ``limit`` (estimated).

    The estimate is this window's count plus the previous window's, weighed by the share of it still within one
    period of now (Cloudflare's sliding-window counter): close to the exact sliding log, two rows per key. Run
    in the caller's transaction: the row lock the increment takes serialises racing hits of one key, on every
    replica.

    Args:
        session: The caller's session (the caller commits).
        key: Who asks, e.g. ``"slack:T0123:U0456"``; at most 200 characters are kept.
        limit: Requests allowed per period.
        period_s: The period in seconds.
        now: Epoch seconds (tests); the current time by default.

    Returns:
        Allowed (and counted), or refused (not counted) with the seconds until a request would be allowed.
    """
    now = time.time() if now is None else now
    key = key[:200]
    window = int(now // period_s)
    starts = window * period_s
    weight = 1.0 - (now - starts) / period_s  # the previous window's share still within the period
    # each row is still needed for the whole window after its own
    current = _count(session, key=key, window=window, expires_at=starts + 2 * period_s, now=now)
    previous = session.scalar(select(RateLimitWindow.hits).where(RateLimitWindow.key == key,
                                                                 RateLimitWindow.window == window - 1)) or 0
    if previous * weight + current <= limit + 1e-9:
        return RateDecision(allowed=True, remaining=max(int(math.floor(limit - previous * weight - current)), 0))
    session.execute(update(RateLimitWindow).where(RateLimitWindow.key == key, RateLimitWindow.window == window)
                    .values(hits=RateLimitWindow.hits - 1))
    return RateDecision(allowed=False, retry_after_s=max(_allowed_at(current - 1, previous, limit=limit,
                                                                     period_s=period_s, starts=starts) - now, 1.0))


def _allowed_at(current: int, previous: int, *, limit: int, period_s: int, starts: int) -> float:
    """When one more request fits, given this window's and the previous window's counts (epoch seconds)."""
    if current + 1 <= limit:  # later in this window, once enough of the previous one has slid out
        return starts + (1.0 - (limit - current - 1) / previous) * period_s
    # in the next window, once enough of this one has slid out
    return starts + period_s + max(1.0 - (limit - 1) / current, 0.0) * period_s

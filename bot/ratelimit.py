"""Per-user question limit, shared by every replica: at most N questions in a sliding window.

The counts live in the database (:func:`storage.ratelimit.hit_sliding`, the storage the web chat's limits use), so
a user gets N questions per window whichever replica Slack hands each question to. When the database cannot
count (down, or locked for too long), the question is counted in this process instead: a database fault neither
lifts the limit nor refuses everyone.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict, deque
from typing import TYPE_CHECKING, Callable

from sqlalchemy.exc import SQLAlchemyError

from storage.ratelimit import hit_sliding

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

__all__ = ["RateLimiter", "SCOPE"]

log = logging.getLogger(__name__)
SCOPE = "slack"  # the key prefix of Slack users' counts (the web chat's are "ask" and "request")


class RateLimiter:
    """At most ``count`` questions per user in ``period_s`` seconds, counted in the database when given sessions.

    Args:
        count: Questions allowed per period.
        period_s: The period in seconds.
        sessions: The database shared by the replicas; None counts in this process only (tests, one process).
        clock: Epoch seconds (tests).
    """

    def __init__(self, *, count: int, period_s: float, sessions: "sessionmaker[Session] | None" = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._count, self._period, self._sessions, self._clock = count, period_s, sessions, clock
        self._hits: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def check(self, key: str) -> float:
        """Count a question of ``key``; return 0 when allowed, else the seconds until the next one is."""
        now = self._clock()
        if self._sessions is not None:
            try:
                with self._sessions.begin() as session:
                    decision = hit_sliding(session, f"{SCOPE}:{key}", limit=self._count, period_s=int(self._period),
                                           now=now)
            except SQLAlchemyError as error:
                log.warning("could not count a question in the database (%s); counting it in this process",
                            error.__class__.__name__)
            else:
                return 0.0 if decision.allowed else decision.retry_after_s
        return self._check_here(key, now)

    def _check_here(self, key: str, now: float) -> float:
        """The exact sliding log, in this process's memory."""
        with self._lock:
            hits = self._hits[key]
            while hits and now - hits[0] >= self._period:
                hits.popleft()
            if len(hits) >= self._count:
                return max(self._period - (now - hits[0]), 0.1)
            hits.append(now)
            return 0.0

"""Per-user rate limit: at most N questions in a sliding window."""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from typing import Callable

__all__ = ["RateLimiter"]


class RateLimiter:
    """Sliding-window limiter kept in memory (per bot process)."""

    def __init__(self, *, count: int, period_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._count, self._period, self._clock = count, period_s, clock
        self._hits: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def check(self, key: str) -> float:
        """Record a hit for ``key``; return 0 when allowed, else the seconds until the next one is."""
        now = self._clock()
        with self._lock:
            hits = self._hits[key]
            while hits and now - hits[0] >= self._period:
                hits.popleft()
            if len(hits) >= self._count:
                return max(self._period - (now - hits[0]), 0.1)
            hits.append(now)
            return 0.0

"""Per-client rate limits, counted in the database so every replica of the web chat shares them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from storage.ratelimit import hit

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from bot.settings import RateLimit

__all__ = ["RateLimited", "enforce"]


class RateLimited(Exception):
    """Too many requests from one client; ``retry_after_s`` until the next is allowed."""

    def __init__(self, retry_after_s: float, what: str) -> None:
        super().__init__(what)
        self.retry_after_s = max(1, math.ceil(retry_after_s))
        self.what = what

    def message(self) -> str:
        seconds = self.retry_after_s
        wait = f"{seconds} second{'s' if seconds != 1 else ''}" if seconds < 90 else f"{round(seconds / 60)} minutes"
        return f"Too many {self.what} from you. Please try again in {wait}."


def enforce(sessions: "sessionmaker[Session]", *, client: str,
            limits: Sequence[tuple[str, "RateLimit", str]]) -> None:
    """Count one request of ``client`` against each (scope, limit, what it counts), in one transaction.

    Raises:
        RateLimited: Over one of them (the first, in order); the hit still counts against the others.
    """
    with sessions.begin() as session:
        decisions = [(hit(session, f"{scope}:{client}", limit=limit.count, period_s=limit.period_s), what)
                     for scope, limit, what in limits]
    for decision, what in decisions:
        if not decision.allowed:
            raise RateLimited(decision.retry_after_s, what)

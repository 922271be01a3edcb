"""The services the Slack listeners share, built once by the composition root."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bot.metrics import Metrics
from bot.ratelimit import RateLimiter
from bot.worker import Worker

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from bot.agents import AgentGroup
    from storage.dbfile import DatabaseFile
    from bot.settings import Settings
    from answers.engine import AnswerEngine

__all__ = ["Services", "RecentViewers"]

MAX_VIEWERS = 500  # Home tabs this process keeps up to date when a known issue changes


class RecentViewers:
    """The people who opened the Home tab lately (this process saw it), newest last, at most ``limit``."""

    def __init__(self, limit: int = MAX_VIEWERS) -> None:
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()
        self._limit = limit

    def saw(self, user_id: str) -> None:
        with self._lock:
            self._seen.pop(user_id, None)
            self._seen[user_id] = None
            while len(self._seen) > self._limit:
                self._seen.popitem(last=False)

    def users(self) -> list[str]:
        with self._lock:
            return list(self._seen)


@dataclass
class Services:
    """Everything a listener needs besides the Slack client Bolt hands it."""

    settings: "Settings"
    engine: "AnswerEngine"
    sessions: "sessionmaker[Session]"
    worker: Worker
    limiter: RateLimiter
    bot_user_id: str = ""
    agents: frozenset[str] = field(default_factory=frozenset)
    agent_group: "AgentGroup | None" = None
    metrics: Metrics = field(default_factory=Metrics)
    intake_sessions: "sessionmaker[Session] | None" = None  # short lock waits, before Slack is acknowledged
    database_file: "DatabaseFile | None" = None  # the SQLite file opened, watched (None on PostgreSQL)
    home_viewers: RecentViewers = field(default_factory=RecentViewers)

    def known_agents(self) -> frozenset[str]:
        """Every agent the bot knows of: the listed ones and the user group's members (cached)."""
        return self.agents | (self.agent_group.members() if self.agent_group is not None else frozenset())

    def is_agent(self, user_id: str) -> bool:
        """Listed in ``ITBOT_AGENT_USER_IDS``, or a member of ``ITBOT_AGENT_USERGROUP``."""
        return user_id in self.agents or (self.agent_group is not None and user_id in self.agent_group)

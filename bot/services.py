"""The services the Slack listeners share, built once by the composition root."""

from __future__ import annotations

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

__all__ = ["Services"]


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

    def known_agents(self) -> frozenset[str]:
        """Every agent the bot knows of: the listed ones and the user group's members (cached)."""
        return self.agents | (self.agent_group.members() if self.agent_group is not None else frozenset())

    def is_agent(self, user_id: str) -> bool:
        """Listed in ``ITBOT_AGENT_USER_IDS``, or a member of ``ITBOT_AGENT_USERGROUP``."""
        return user_id in self.agents or (self.agent_group is not None and user_id in self.agent_group)

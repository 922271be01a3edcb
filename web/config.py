"""What the web door needs from the settings, and the services it is handed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from slack_sdk import WebClient
    from sqlalchemy.orm import Session, sessionmaker

    from answers.engine import AnswerEngine
    from bot.settings import RateLimit

__all__ = ["WebConfig", "WebContext"]


@dataclass(frozen=True, slots=True)
class WebConfig:
    """The web chat's settings (``ITBOT_WEB_*``; see ``Settings.web_config``)."""

    org_name: str
    primary_colour: str
    accent_colour: str
    ask_limit: "RateLimit"
    request_limit: "RateLimit"
    host: str = "127.0.0.1"
    port: int = 0
    cors_origins: tuple[str, ...] = ()
    trusted_user_header: str | None = None
    max_body_bytes: int = 16_384
    escalation_channel: str | None = None
    max_concurrent_answers: int = 8


@dataclass
class WebContext:
    """Everything the routes use: the same engine and database as the Slack app, and Slack for the helpdesk."""

    config: WebConfig
    engine: "AnswerEngine"
    sessions: "sessionmaker[Session]"
    slack: "WebClient | None" = None  # posts escalations to the helpdesk channel; None: stored only

"""The Messages tab opened: which prompts to suggest, and whether to greet. Knows storage, not Slack."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from bot.suggestions import NOT_TOPICS, suggested_prompts
from storage import repository as repo
from storage.types import utcnow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

__all__ = ["TOPIC_WINDOW", "Opened", "messages_tab_opened", "greeting_not_posted"]

TOPIC_WINDOW = timedelta(days=30)  # "most asked" means lately: last quarter's outage should not linger


@dataclass(frozen=True, slots=True)
class Opened:
    """What the user sees: a greeting the first time, and the suggested prompts."""

    greet: bool
    prompts: list[dict[str, str]]


def messages_tab_opened(sessions: "sessionmaker[Session]", *, team_id: str, user_id: str) -> Opened:
    """Record the visit (a user is greeted once) and pick the prompts from the most asked topics."""
    with sessions.begin() as session:
        greet = repo.mark_greeted(session, team_id=team_id, user_id=user_id)
        asked = repo.most_asked_intents(session, since=utcnow() - TOPIC_WINDOW, exclude=NOT_TOPICS)
    return Opened(greet=greet, prompts=suggested_prompts([intent for intent, _count in asked]))


def greeting_not_posted(sessions: "sessionmaker[Session]", *, team_id: str, user_id: str) -> None:
    """The greeting :func:`messages_tab_opened` asked for could not be posted: the next visit greets instead."""
    with sessions.begin() as session:
        repo.forget_greeting(session, team_id=team_id, user_id=user_id)

"""``/itsupport <question> | help | status``, answered ephemerally."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from bot import blocks
from bot.conversation import Question
from bot.listeners.intake import take_question
from storage import repository as repo

if TYPE_CHECKING:
    from slack_bolt import App
    from slack_sdk import WebClient

    from bot.services import Services

__all__ = ["register"]


def handle_itsupport(services: "Services", client: "WebClient", ack: Callable[..., None], command: dict[str, Any]) -> None:
    text = (command.get("text") or "").strip()
    if text.lower() in ("", "help", "?"):
        ack(**blocks.help_blocks(services.settings.helpdesk_name))
        return
    if text.lower() == "status":
        with services.sessions.begin() as session:
            escalations = repo.list_open_escalations_for_user(session, command["user_id"])
        ack(**blocks.status_blocks(escalations))
        return
    ack()
    question = Question(team_id=command.get("team_id", ""), channel_id=command["channel_id"],
                        thread_ts=f"slash:{command.get('trigger_id') or command['user_id']}",
                        user_id=command["user_id"], source="slash", text=text)
    take_question(services, client, question, event_id=None, reply_channel=command["channel_id"],
                  reply_thread_ts=None, ephemeral=True)


def register(app: "App", services: "Services") -> None:
    app.command("/itsupport")(lambda ack, command, client: handle_itsupport(services, client, ack, command))

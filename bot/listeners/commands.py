"""``/itsupport <question> | help | status``, answered ephemerally."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from bot import blocks
from bot.conversation import Question
from bot.delivery import post_in_place
from bot.incoming import Incoming
from bot.listeners.intake import receive, run_for_user, take_question
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
    ack()  # before any database work: a locked or unreachable database must not make Slack time out
    response_url = command.get("response_url")  # reaches the user where the bot is not a channel member
    if text.lower() == "status":
        run_for_user(services, client, lambda: _post_status(services, client, command), channel=command["channel_id"],
                     thread_ts=None, user_id=command["user_id"], ephemeral=True, response_url=response_url)
        return
    question = Question(team_id=command.get("team_id", ""), channel_id=command["channel_id"],
                        thread_ts=f"slash:{command.get('trigger_id') or command['user_id']}",
                        user_id=command["user_id"], source="slash", text=text)
    received = receive(services, Incoming(question, command["channel_id"], None), event_id=None, ephemeral=True)
    take_question(services, client, received, response_url=response_url)


def _post_status(services: "Services", client: "WebClient", command: dict[str, Any]) -> None:
    with services.sessions.begin() as session:
        message = blocks.status_blocks(repo.list_open_escalations_for_user(session, command["user_id"]))
    post_in_place(client, channel=command["channel_id"], thread_ts=None, user_id=command["user_id"], ephemeral=True,
                  message=message, response_url=command.get("response_url"))


def register(app: "App", services: "Services") -> None:
    app.command("/itsupport")(lambda ack, command, client: handle_itsupport(services, client, ack, command))

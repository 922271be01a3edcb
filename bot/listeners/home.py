"""``app_home_opened``: the Messages tab is the bot's home; a greeting once, and suggested prompts each visit."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from slack_sdk.errors import SlackApiError

from bot import blocks
from bot.messages_tab import greeting_not_posted, messages_tab_opened
from bot.posting import post_once
from bot.worker import Busy

if TYPE_CHECKING:
    from slack_bolt import App
    from slack_sdk import WebClient

    from bot.services import Services

__all__ = ["register"]

log = logging.getLogger(__name__)


def on_messages_tab(services: "Services", client: "WebClient", body: dict[str, Any], event: dict[str, Any]) -> None:
    """Greet a first-time visitor, then suggest prompts (without ``thread_ts``: for an app with ``agent_view``
    Slack documents that passing it makes the call fail silently)."""
    user, channel = event["user"], event["channel"]
    opened = messages_tab_opened(services.sessions, team_id=body.get("team_id") or "", user_id=user)
    if opened.greet:  # first: Slack attaches the prompts to the channel's latest message
        try:
            post_once(client, channel=channel, **blocks.greeting_message(
                user_id=user, helpdesk_name=services.settings.helpdesk_name))
        except SlackApiError as error:  # not greeted after all: the next visit greets; the prompts still come
            greeting_not_posted(services.sessions, team_id=body.get("team_id") or "", user_id=user)
            log.warning("greeting refused, the next visit greets: %s", error.response.get("error"))
    try:
        client.assistant_threads_setSuggestedPrompts(channel_id=channel, title=blocks.PROMPTS_TITLE,
                                                     prompts=opened.prompts)
    except SlackApiError as error:  # an app without agent_view or assistant:write: the tab still works
        log.warning("suggested prompts refused: %s", error.response.get("error"))


def register(app: "App", services: "Services") -> None:
    @app.event("app_home_opened")
    def app_home_opened(body: dict[str, Any], event: dict[str, Any], client: "WebClient") -> None:
        if event.get("tab") != "messages" or not event.get("user") or not event.get("channel"):
            return  # the Home tab is not enabled
        try:  # on the worker: Bolt's few listener threads stay free; a failure is logged, not apologised for
            services.worker.submit(lambda: on_messages_tab(services, client, body, event))
        except Busy:
            log.warning("too busy to set up the Messages tab for a visit; the next visit does")

"""``app_home_opened``: the Messages tab (a greeting once, suggested prompts each visit) and the Home tab.

The Home tab (:mod:`bot.home_tab`) is published when the user opens it, and again for the people a request
concerns when it changes (:func:`refresh_homes`): its requester, and the agent acting on it; and for everyone who
opened it lately (``Services.home_viewers``) and every agent when a known issue is posted or cleared. Publishing runs on
the worker and never raises: a Home tab Slack refused is logged, and the next visit publishes it again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from slack_sdk.errors import SlackApiError, SlackClientError

from bot import blocks, home_tab
from bot.conversation import current_known_issues
from bot.messages_tab import TOPIC_WINDOW, greeting_not_posted, messages_tab_opened
from bot.posting import post_once
from bot.suggestions import NOT_TOPICS
from bot.worker import Busy
from storage import repository as repo
from storage.types import utcnow

if TYPE_CHECKING:
    from slack_bolt import App
    from slack_sdk import WebClient

    from bot.services import Services

__all__ = ["register", "home_for", "publish_home", "refresh_homes"]

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


def home_for(services: "Services", user_id: str, *, notice: str | None = None) -> dict[str, Any]:
    """The Home view of ``user_id`` as it stands: the known issues, their requests and, for an agent, the queue."""
    agent = services.is_agent(user_id)  # may ask Slack for the user group: outside the transaction
    with services.sessions.begin() as session:
        requests = [home_tab.Request.of(e) for e in
                    repo.list_escalations_for_user(session, user_id, limit=home_tab.MAX_REQUESTS)]
        queue = [home_tab.Request.of(e) for e in repo.list_open_queue(session, limit=home_tab.MAX_QUEUE)] \
            if agent else None
        asked = repo.most_asked_intents(session, limit=home_tab.MAX_TOPICS, since=utcnow() - TOPIC_WINDOW,
                                        exclude=NOT_TOPICS)
    known = [blocks.known_issue_line(text=n.text, created_at=n.created_at, created_by=n.created_by, topic=n.topic)
             for n in current_known_issues(services.sessions)]
    return home_tab.home_view(helpdesk_name=services.settings.helpdesk_name, requests=requests, queue=queue,
                              topics=home_tab.home_topics([intent for intent, _count in asked]), notice=notice,
                              known_issues=known)


def publish_home(services: "Services", client: "WebClient", user_id: str, *, notice: str | None = None) -> bool:
    """Publish ``user_id``'s Home tab; False (and a warning in the log) when Slack refused or could not be reached."""
    try:
        client.views_publish(user_id=user_id, view=home_for(services, user_id, notice=notice))
    except SlackApiError as error:  # not_enabled (the Home tab is off in the app's settings), a bad user...
        log.warning("Home tab not published: %s", error.response.get("error"))
        return False
    except (SlackClientError, OSError) as error:
        log.warning("Home tab not published: %s", error.__class__.__name__)
        return False
    return True


def refresh_homes(services: "Services", client: "WebClient", user_ids: Iterable[str], *,
                  notices: Mapping[str, str] | None = None) -> None:
    """Republish the Home tabs of ``user_ids`` on the worker (``notices``: a line on top for some of them).

    Returns at once and never raises: a request changed, and showing it is a courtesy, not part of the change.
    """
    users = list(dict.fromkeys(u for u in user_ids if u))
    notices = dict(notices or {})

    def job() -> None:
        for user in users:
            publish_home(services, client, user, notice=notices.get(user))

    if users:
        try:
            services.worker.submit(job)
        except Busy:
            log.warning("too busy to refresh %d Home tab(s); the next visit shows the change", len(users))


def register(app: "App", services: "Services") -> None:
    @app.event("app_home_opened")
    def app_home_opened(body: dict[str, Any], event: dict[str, Any], client: "WebClient") -> None:
        user = event.get("user")
        if event.get("tab") == "home" and user:
            services.home_viewers.saw(user)  # kept up to date when a known issue is posted or cleared
            refresh_homes(services, client, [user])
            return
        if event.get("tab") != "messages" or not user or not event.get("channel"):
            return
        try:  # on the worker: Bolt's few listener threads stay free; a failure is logged, not apologised for
            services.worker.submit(lambda: on_messages_tab(services, client, body, event))
        except Busy:
            log.warning("too busy to set up the Messages tab for a visit; the next visit does")

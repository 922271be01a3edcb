"""Show that an answer is on its way: the thread status in a DM, an 👀 on a question asked in a channel.

``assistant.threads.setStatus`` shows "<App> is looking into it…" under the user's message, with loading
messages Slack rotates through; Slack clears it when the app replies in the thread (or after two minutes). A
workspace or app that refuses it (no ``agent_view``, a missing scope) gets the placeholder message instead, so
each caller learns from the return value whether the status is showing. Reactions mark questions in channels,
where the status does not exist. None of these calls may stop an answer: every failure is logged and swallowed.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from slack_sdk.errors import SlackApiError

if TYPE_CHECKING:
    from slack_sdk import WebClient

__all__ = ["STATUS", "LOADING_MESSAGES", "SEEN", "SOLVED", "set_status", "clear_status", "react", "unreact", "slack_error"]

log = logging.getLogger(__name__)
STATUS = "is looking into it…"
LOADING_MESSAGES = ("Reading the knowledge base…", "Checking the steps for your setup…", "Writing your answer…")
SEEN = "eyes"  # 👀 on a question asked in a channel, until it is solved
SOLVED = "white_check_mark"  # ✅ in its place once the person marked the answer solved


def slack_error(error: Exception) -> str:
    """Slack's error code (or the HTTP status), else the exception's class: a log word, never the text."""
    if isinstance(error, SlackApiError):
        return str(error.response.get("error") or error.response.status_code)
    return error.__class__.__name__


def set_status(client: "WebClient", *, channel: str, thread_ts: str) -> bool:
    """Show the thread status with loading messages; False when Slack refused it (use a placeholder instead)."""
    try:
        client.assistant_threads_setStatus(channel_id=channel, thread_ts=thread_ts, status=STATUS,
                                           loading_messages=list(LOADING_MESSAGES))
    except Exception as error:  # refused (not_allowed, missing_scope...) or unreachable: the placeholder follows
        log.info("thread status refused (%s); posting a placeholder instead", slack_error(error))
        return False
    return True


def clear_status(client: "WebClient", *, channel: str, thread_ts: str) -> None:
    """Clear the thread status when no reply follows in the thread (a relayed message, a failure)."""
    try:
        client.assistant_threads_setStatus(channel_id=channel, thread_ts=thread_ts, status="")
    except Exception as error:  # Slack drops it after two minutes anyway
        log.warning("could not clear the thread status: %s", slack_error(error))


def react(client: "WebClient", *, channel: str, ts: str, name: str) -> bool:
    """Add the reaction ``name`` to a message; True when it is there (``already_reacted`` counts)."""
    try:
        client.reactions_add(channel=channel, timestamp=ts, name=name)
    except SlackApiError as error:
        if error.response.get("error") == "already_reacted":
            return True
        log.warning("could not add :%s: to a question: %s", name, slack_error(error))
        return False
    except Exception as error:  # a reaction is a courtesy: never stop the answer for it
        log.warning("could not add :%s: to a question: %s", name, slack_error(error))
        return False
    return True


def unreact(client: "WebClient", *, channel: str, ts: str, name: str) -> None:
    """Remove the bot's reaction ``name`` from a message; one that is not there (``no_reaction``) is fine."""
    try:
        client.reactions_remove(channel=channel, timestamp=ts, name=name)
    except Exception as error:  # a leftover 👀 is untidy, not harmful
        if not (isinstance(error, SlackApiError) and error.response.get("error") == "no_reaction"):
            log.warning("could not remove :%s: from a question: %s", name, slack_error(error))

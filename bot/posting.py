"""``chat.postMessage`` that never posts twice when Slack fails after posting.

A 500/503 or a dropped connection can arrive after Slack has stored the
message; the SDK's retry handlers would then post it again, and the user reads
the same answer twice. Every post made through :func:`post_once` carries a
fresh id in its message metadata, the client's blind retries skip such posts
(:func:`retry_handlers`), and after an ambiguous failure :func:`post_once`
looks for the id in the thread (or the channel's latest messages) before it
posts again.
"""

from __future__ import annotations

import logging
import time
import uuid
from http.client import RemoteDisconnected
from typing import TYPE_CHECKING, Any
from urllib.error import URLError

from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (ConnectionErrorRetryHandler, RateLimitErrorRetryHandler,
                                                   ServerErrorRetryHandler)

if TYPE_CHECKING:
    from slack_sdk import WebClient
    from slack_sdk.http_retry import RetryHandler
    from slack_sdk.http_retry.request import HttpRequest

__all__ = ["EVENT_TYPE", "post_once", "post_metadata", "find_posts", "retry_handlers"]

log = logging.getLogger(__name__)
EVENT_TYPE = "itbot_post"
ATTEMPTS = 3
LOOKBACK = 50  # channel messages searched for a top-level post
LOOK_EVERY_S = 2.0  # after a time-out, how often to look for the post that may still land


def _checked(request: "HttpRequest") -> bool:
    """True for a post made by :func:`post_once`, which retries it itself after checking."""
    return request.url.endswith("/chat.postMessage") and f'"{EVENT_TYPE}"'.encode() in (request.data or b"")


class _ServerErrors(ServerErrorRetryHandler):
    def _can_retry(self, *, request: "HttpRequest", **kwargs: Any) -> bool:
        return not _checked(request) and super()._can_retry(request=request, **kwargs)


class _ConnectionErrors(ConnectionErrorRetryHandler):
    def _can_retry(self, *, request: "HttpRequest", **kwargs: Any) -> bool:
        return not _checked(request) and super()._can_retry(request=request, **kwargs)


def retry_handlers() -> list["RetryHandler"]:
    """Retries on 429, 5xx and dropped connections, except for checked posts after a 5xx or a drop."""
    return [RateLimitErrorRetryHandler(max_retry_count=3), _ServerErrors(max_retry_count=2),
            _ConnectionErrors(max_retry_count=2)]


def _timed_out(error: Exception) -> bool:
    """The client gave up waiting: the request may still reach Slack afterwards (held by a proxy or by Slack)."""
    return isinstance(error, TimeoutError) or (isinstance(error, URLError) and isinstance(error.reason, TimeoutError))


def _ambiguous(error: Exception) -> bool:
    """Slack may or may not have stored the message."""
    if isinstance(error, SlackApiError):
        return error.response.status_code >= 500
    return isinstance(error, (URLError, ConnectionError, RemoteDisconnected, TimeoutError))


def post_metadata(post_id: str) -> dict[str, Any]:
    """The message metadata that marks a post with ``post_id``, so it can be found again."""
    return {"event_type": EVENT_TYPE, "event_payload": {"id": post_id}}


def find_posts(client: "WebClient", channel: str, thread_ts: str | None, post_ids: set[str]) -> dict[str, dict]:
    """The posts among ``post_ids`` already in the thread (or the channel's latest messages), by id."""
    if thread_ts:
        found = client.conversations_replies(channel=channel, ts=thread_ts, include_all_metadata=True, limit=200)
    else:
        found = client.conversations_history(channel=channel, include_all_metadata=True, limit=LOOKBACK)
    posts = {}
    for message in found.get("messages") or []:
        metadata = message.get("metadata") or {}
        post_id = (metadata.get("event_payload") or {}).get("id")
        if metadata.get("event_type") == EVENT_TYPE and post_id in post_ids:
            posts[post_id] = message
    return posts


def _look_up(client: "WebClient", channel: str, thread_ts: str | None, post_id: str, *,
             patience: float) -> dict | None:
    """The post marked ``post_id`` if Slack has it, looking every :data:`LOOK_EVERY_S` for ``patience`` seconds."""
    deadline = time.monotonic() + patience
    while True:
        try:
            posted = find_posts(client, channel, thread_ts, {post_id}).get(post_id)
        except Exception as lookup_error:  # cannot tell: posting again risks a duplicate, not posting loses it
            log.warning("could not check whether a failed post went through (%s); posting again",
                        lookup_error.__class__.__name__)
            return None
        if posted is not None or time.monotonic() >= deadline:
            return posted
        time.sleep(LOOK_EVERY_S)


def post_once(client: "WebClient", *, channel: str, thread_ts: str | None = None, post_id: str | None = None,
              **message: Any) -> dict[str, Any]:
    """Post ``message`` exactly once; return Slack's response (``ts``, ``channel``, ``message``).

    ``post_id`` (a fresh one by default) marks the post, so that a later attempt can tell it was made.
    Raises the last error when Slack still fails after :data:`ATTEMPTS` tries, or at once for a definite
    refusal (``channel_not_found``, ``msg_too_long``...).
    """
    post_id = post_id or uuid.uuid4().hex
    metadata = post_metadata(post_id)
    for attempt in range(1, ATTEMPTS + 1):
        try:
            response = client.chat_postMessage(channel=channel, thread_ts=thread_ts, metadata=metadata, **message)
            return response.data if hasattr(response, "data") else response  # type: ignore[return-value]
        except Exception as error:
            if not _ambiguous(error) or attempt == ATTEMPTS:
                raise
            # After a time-out the post may land later: keep looking for as long again before posting anew.
            posted = _look_up(client, channel, thread_ts, post_id,
                              patience=float(getattr(client, "timeout", 0) or 0) if _timed_out(error) else 0.0)
            if posted is not None:
                log.info("Slack failed after storing a post (%s); not posting it again", error.__class__.__name__)
                return {"ok": True, "channel": channel, "ts": posted["ts"], "message": posted}
            time.sleep(0.5 * attempt)
    raise AssertionError("unreachable")

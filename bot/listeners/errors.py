"""The one handler for unexpected listener errors: log with a reference id, apologise briefly."""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Any

from bot.delivery import apologise

if TYPE_CHECKING:
    from slack_bolt import App

    from bot.services import Services

__all__ = ["register"]

log = logging.getLogger(__name__)


def register(app: "App", services: "Services") -> None:
    @app.error
    def on_error(error: Exception, body: dict[str, Any]) -> None:
        reference = uuid.uuid4().hex[:8]
        log.error("listener error (ref %s): %s", reference, error.__class__.__name__, exc_info=error)
        event = body.get("event") or {}
        user = event.get("user") or (body.get("user") or {}).get("id") or body.get("user_id")
        channel = event.get("channel") or (body.get("channel") or {}).get("id") or body.get("channel_id")
        if user and channel and not event.get("bot_id"):
            thread = event.get("thread_ts") or event.get("ts")
            apologise(app.client, channel=channel, thread_ts=thread, user_id=user, reference=reference,
                      ephemeral=thread is None)

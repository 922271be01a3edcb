"""``response_url``: where Bolt's ``respond()`` posts after a slash command or a button click.

Payloads built by :class:`~fakeslack.payloads.Payloads` carry response URLs on
this fake's HTTP server. :func:`register` remembers, when the envelope is
pushed, which channel, user and message each URL answers for; :func:`receive`
applies a POST the way Slack does: replace or delete the original message,
post in the channel (``response_type: in_channel``) or show an ephemeral
message to the user (the default). Slack honours a response URL five times.
"""

from __future__ import annotations

from typing import Any

from .blockkit import with_block_ids
from .chat import check_content, flag
from .state import ApiError, SlackState
from .workspace import new_ts

__all__ = ["MAX_USES", "receive", "register"]

MAX_USES = 5


def register(state: SlackState, payload: dict[str, Any]) -> None:
    """Remember what a pushed payload's ``response_url`` refers to."""
    url = payload.get("response_url")
    prefix = f"{state.http_url}/hooks/"
    if not isinstance(url, str) or not url.startswith(prefix):
        return
    container = payload.get("container") or {}
    user = payload.get("user_id") or (payload.get("user") or {}).get("id")
    channel = payload.get("channel_id") or container.get("channel_id") or (payload.get("channel") or {}).get("id")
    with state.cond:
        state.hooks[url[len(prefix):]] = {
            "channel": channel, "user": user, "message_ts": container.get("message_ts"),
            "thread_ts": container.get("thread_ts"), "is_ephemeral": bool(container.get("is_ephemeral")),
            "uses": 0}


def _apply(state: SlackState, context: dict[str, Any], body: dict[str, Any]) -> None:
    channel, original = context["channel"], context["message_ts"]
    if flag(body, "delete_original") and original:
        state.delete_message(channel, original)
        return
    check_content(body)
    content = {k: body[k] for k in ("text", "blocks", "attachments") if k in body}
    if "blocks" in content:
        content["blocks"] = with_block_ids(content["blocks"])
    if flag(body, "replace_original") and original and not context["is_ephemeral"]:
        message = state.message(channel, original)
        if message is None:
            raise ApiError("message_not_found")
        message = {k: v for k, v in message.items() if k not in ("blocks", "attachments")}
        state.replace_message(channel, original, {**message, **content})
        return
    ws = state.workspace
    message = {"type": "message", "user": ws.bot_user_id, "bot_id": ws.bot_id, "app_id": ws.app_id,
               "ts": new_ts(), **content}
    thread_ts = body.get("thread_ts") or context["thread_ts"]
    if thread_ts:
        message["thread_ts"] = thread_ts
    if body.get("response_type") == "in_channel":
        state.add_message(channel, message)
    else:
        with state.cond:
            state.ephemeral.append({**message, "channel": channel, "recipient": context["user"]})
            state.notify()


def receive(state: SlackState, token: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Handle a POST to a response URL; returns the HTTP status and JSON body."""
    with state.cond:
        context = state.hooks.get(token)
        if context is None or context["uses"] >= MAX_USES:
            return 404, {"ok": False, "error": "expired_url"}
        context["uses"] += 1
    try:
        _apply(state, context, body)
    except ApiError as error:
        return 400, error.response()
    return 200, {"ok": True}

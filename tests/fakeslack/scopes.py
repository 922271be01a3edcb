"""Which bot-token scopes Slack requires for each Web API method and event subscription, from Slack's reference.

``needed(method, params)`` gives the scopes of one call: any one of them is enough (Slack accepts
``assistant:write`` or ``chat:write`` for ``assistant.threads.setStatus``), and for ``conversations.history`` /
``replies`` / ``list`` they depend on the conversation's kind. A fake started with ``scopes=`` refuses a call
that holds none of them with Slack's ``missing_scope`` (``needed``, ``provided``); one started with
``bot_events=`` refuses to push an event the app is not subscribed to.

Methods outside :data:`METHOD_SCOPES` need no bot scope (``auth.test``, ``views.*``, ``chat.getPermalink``)
or are called with the app-level token (``apps.connections.open``: ``connections:write``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["METHOD_SCOPES", "EVENT_SCOPES", "HISTORY_SCOPES", "needed", "missing", "subscription"]

# Each entry: the scopes that allow the method (any one of them).
METHOD_SCOPES: dict[str, tuple[str, ...]] = {
    "chat.postMessage": ("chat:write",),
    "chat.update": ("chat:write",),
    "chat.delete": ("chat:write",),
    "chat.postEphemeral": ("chat:write",),
    "chat.startStream": ("chat:write",),
    "chat.appendStream": ("chat:write",),
    "chat.stopStream": ("chat:write",),
    "reactions.add": ("reactions:write",),
    "reactions.remove": ("reactions:write",),
    "conversations.open": ("im:write",),
    "users.info": ("users:read",),
    "usergroups.users.list": ("usergroups:read",),
    "files.getUploadURLExternal": ("files:write",),
    "files.completeUploadExternal": ("files:write",),
    "assistant.threads.setStatus": ("chat:write", "assistant:write"),  # chat:write documented, assistant:write accepted
    "assistant.threads.setSuggestedPrompts": ("assistant:write",),
    "assistant.threads.setTitle": ("assistant:write",),
}
# conversations.history and conversations.replies: by the kind of conversation (its id's first letter).
HISTORY_SCOPES = {"C": "channels:history", "G": "groups:history", "D": "im:history"}
# conversations.list: by the types asked for.
_LIST_SCOPES = {"public_channel": "channels:read", "private_channel": "groups:read", "im": "im:read",
                "mpim": "mpim:read"}
# Event subscriptions (the manifest's bot_events) and the scope each needs ("" for none).
EVENT_SCOPES: dict[str, str] = {
    "app_mention": "app_mentions:read",
    "message.im": "im:history",
    "message.channels": "channels:history",
    "message.groups": "groups:history",
    "message.mpim": "mpim:history",
    "app_home_opened": "",
    "assistant_thread_started": "assistant:write",
    "assistant_thread_context_changed": "assistant:write",
}


def needed(method: str, params: dict[str, Any]) -> list[tuple[str, ...]]:
    """What this call needs: every group must be held, each by any one of its scopes; empty when it needs none."""
    if method in ("conversations.history", "conversations.replies"):
        channel = str(params.get("channel") or "")
        return [(HISTORY_SCOPES[channel[0]],)] if channel[:1] in HISTORY_SCOPES else []
    if method == "conversations.list":
        types = str(params.get("types") or "public_channel").split(",")
        return [(_LIST_SCOPES[t],) for t in types if t in _LIST_SCOPES]
    return [METHOD_SCOPES[method]] if method in METHOD_SCOPES else []


def missing(method: str, params: dict[str, Any], granted: frozenset[str]) -> str | None:
    """The first scope this call lacks under ``granted`` (Slack's ``needed``), or None when it may go ahead."""
    for group in needed(method, params):
        if not granted.intersection(group):
            return group[0]
    return None


_MESSAGE_SUBSCRIPTIONS = {"im": "message.im", "channel": "message.channels", "group": "message.groups",
                          "mpim": "message.mpim"}


def subscription(event: dict[str, Any]) -> str:
    """The manifest's name for an event: ``message.im`` for a message in a DM, the event type otherwise."""
    if event.get("type") == "message":
        return _MESSAGE_SUBSCRIPTIONS.get(event.get("channel_type") or "", "message.channels")
    return str(event.get("type"))

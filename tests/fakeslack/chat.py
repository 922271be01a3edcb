"""``chat.*`` and ``reactions.*``: messages the bot posts, edits, streams, deletes and reacts to."""

from __future__ import annotations

import time
from typing import Any

from .blockkit import MAX_TEXT_CHARS, block_errors, with_block_ids
from .state import ApiError, Handler, SlackState
from .workspace import dm_channel_id, new_ts

__all__ = ["METHODS", "check_content", "flag"]


def flag(params: dict[str, Any], key: str) -> bool:
    """A boolean argument as Slack reads it: JSON ``true`` or form ``"1"``/``"true"``."""
    value = params.get(key)
    return value is True or (isinstance(value, str) and value.lower() in ("1", "true"))


def require(params: dict[str, Any], key: str, error: str) -> Any:
    value = params.get(key)
    if value in (None, ""):
        raise ApiError(error)
    return value


def resolve_channel(params: dict[str, Any], key: str = "channel") -> str:
    """The conversation id; a user id means the app's DM with that user, as Slack allows."""
    channel = require(params, key, "channel_not_found")
    if not isinstance(channel, str) or channel[0] not in "CDGUW":
        raise ApiError("channel_not_found")
    return dm_channel_id(channel) if channel[0] in "UW" else channel


def check_content(params: dict[str, Any], *, need_content: bool = True) -> None:
    """Slack's message limits: text length, block count and block contents."""
    text = params.get("text") or params.get("markdown_text")
    if isinstance(text, str) and len(text) > MAX_TEXT_CHARS:
        raise ApiError("msg_too_long")
    problems = block_errors(params.get("blocks"))
    if problems:
        raise ApiError.invalid("invalid_blocks", problems)
    if need_content and not (text or params.get("blocks") or params.get("attachments")):
        raise ApiError("no_text")


def bot_message(state: SlackState, params: dict[str, Any], ts: str) -> dict[str, Any]:
    """The message object Slack stores for a bot post."""
    ws = state.workspace
    message: dict[str, Any] = {
        "type": "message", "user": ws.bot_user_id, "bot_id": ws.bot_id, "app_id": ws.app_id,
        "team": ws.team_id, "ts": ts, "text": params.get("text") or params.get("markdown_text") or "",
        "bot_profile": {"id": ws.bot_id, "app_id": ws.app_id, "name": ws.bot_name, "team_id": ws.team_id},
    }
    for key in ("blocks", "attachments", "metadata", "thread_ts"):
        if params.get(key) is not None:
            message[key] = params[key]
    if "blocks" in message:
        message["blocks"] = with_block_ids(message["blocks"])
    if message.get("thread_ts") and flag(params, "reply_broadcast"):
        message["subtype"] = "thread_broadcast"
    return message


def _own_message(state: SlackState, channel: str, ts: Any, error: str) -> dict[str, Any]:
    message = state.message(channel, ts) if isinstance(ts, str) else None
    if message is None:
        raise ApiError("message_not_found")
    if message.get("bot_id") != state.workspace.bot_id:
        raise ApiError(error)
    return message


def _member(state: SlackState, channel: str) -> None:
    """Posting in a channel the bot has not joined fails, as on Slack (response URLs still work)."""
    if channel in state.not_joined:
        raise ApiError("channel_not_found" if channel.startswith("G") else "not_in_channel")


def post_message(state: SlackState, params: dict[str, Any]) -> dict[str, Any]:
    channel = resolve_channel(params)
    _member(state, channel)
    check_content(params)
    ts = new_ts()
    with state.cond:
        stored = state.add_message(channel, bot_message(state, params, ts))
        state.reply_clears_status(channel, params.get("thread_ts"))
    return {"ok": True, "channel": channel, "ts": ts, "message": stored}


def update(state: SlackState, params: dict[str, Any]) -> dict[str, Any]:
    channel = resolve_channel(params)
    ts = require(params, "ts", "message_not_found")
    check_content(params, need_content=False)
    with state.cond:  # read-modify-write of one message
        return _apply_update(state, channel, ts, params)


def _apply_update(state: SlackState, channel: str, ts: str, params: dict[str, Any]) -> dict[str, Any]:
    message = _own_message(state, channel, ts, "cant_update_message")
    stream = state.streams.get((channel, ts))
    if stream and not stream["stopped"] and time.monotonic() - stream["started"] <= state.stream_expiry_s:
        state.warn(f"chat.update on {ts} in {channel} while it is still streaming (stop the stream first)")
    if "text" in params:
        message["text"] = params["text"]
        if "blocks" not in params:  # documented: new text without blocks drops the old blocks
            message.pop("blocks", None)
            message["edited"] = {"user": state.workspace.bot_user_id, "ts": new_ts()}
    for key in ("blocks", "attachments", "metadata"):
        if key in params:
            if params[key]:
                message[key] = with_block_ids(params[key]) if key == "blocks" else params[key]
            else:
                message.pop(key, None)
    state.replace_message(channel, ts, message)
    return {"ok": True, "channel": channel, "ts": ts, "text": message.get("text", ""), "message": message}


MAX_STREAM_CHARS = 12_000  # markdown_text in each chat.*Stream call


def _stream_text(params: dict[str, Any], *, required: bool) -> str:
    """``markdown_text`` plus the text of any ``markdown_text`` chunks, within Slack's limit."""
    text = params.get("markdown_text") or ""
    chunks = params.get("chunks") or []
    if not isinstance(chunks, list) or any(not isinstance(c, dict) or "type" not in c for c in chunks):
        raise ApiError("invalid_chunks")
    text += "".join(str(c.get("text") or "") for c in chunks if c["type"] == "markdown_text")
    if len(text) > MAX_STREAM_CHARS:
        raise ApiError("msg_too_long")
    if required and not text:
        raise ApiError.invalid("invalid_arguments", ["missing required field: markdown_text"])
    return text


def start_stream(state: SlackState, params: dict[str, Any]) -> dict[str, Any]:
    """``chat.startStream``: a reply that grows; channels need the recipient user and team."""
    channel = resolve_channel(params)
    _member(state, channel)
    thread_ts = require(params, "thread_ts", "invalid_thread_ts")
    if channel[0] in "CG":
        for key in ("recipient_user_id", "recipient_team_id"):
            if not params.get(key):
                raise ApiError(f"missing_{key}")
    text = _stream_text(params, required=False)
    ts = new_ts()
    with state.cond:
        if state.message(channel, thread_ts) is None:
            raise ApiError("invalid_thread_ts")
        stored = state.add_message(channel, bot_message(state, {"text": text, "thread_ts": thread_ts}, ts))
        state.streams[(channel, ts)] = {"started": time.monotonic(), "stopped": False, "appends": 0,
                                        "recipient": params.get("recipient_user_id")}
        state.reply_clears_status(channel, thread_ts)
    return {"ok": True, "channel": channel, "ts": ts, "message": stored}


def _streaming(state: SlackState, channel: str, params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    ts = require(params, "ts", "message_not_found")
    message = _own_message(state, channel, ts, "message_not_found")
    stream = state.streams.get((channel, ts))
    if stream is None or stream["stopped"] or time.monotonic() - stream["started"] > state.stream_expiry_s:
        raise ApiError("message_not_in_streaming_state")
    return message, stream


def append_stream(state: SlackState, params: dict[str, Any]) -> dict[str, Any]:
    channel = resolve_channel(params)
    text = _stream_text(params, required=True)
    with state.cond:
        message, stream = _streaming(state, channel, params)
        message["text"] += text
        stream["appends"] += 1
        state.replace_message(channel, message["ts"], message)
    return {"ok": True, "channel": channel, "ts": message["ts"]}


def stop_stream(state: SlackState, params: dict[str, Any]) -> dict[str, Any]:
    """``chat.stopStream``: the last text, and blocks shown under it; the message is then a plain message."""
    channel = resolve_channel(params)
    text = _stream_text(params, required=False)
    check_content(params, need_content=False)
    with state.cond:
        message, stream = _streaming(state, channel, params)
        message["text"] += text
        if params.get("blocks"):
            message["blocks"] = with_block_ids(params["blocks"])
        if params.get("metadata"):
            message["metadata"] = params["metadata"]
        stream["stopped"] = True
        state.replace_message(channel, message["ts"], message)
    return {"ok": True, "channel": channel, "ts": message["ts"], "message": message}


def post_ephemeral(state: SlackState, params: dict[str, Any]) -> dict[str, Any]:
    channel = resolve_channel(params)
    _member(state, channel)
    user = require(params, "user", "user_not_in_channel")
    check_content(params)
    ts = new_ts()
    message = {**bot_message(state, params, ts), "channel": channel, "recipient": user}
    with state.cond:
        state.ephemeral.append(message)
        state.notify()
    return {"ok": True, "message_ts": ts}


def delete(state: SlackState, params: dict[str, Any]) -> dict[str, Any]:
    channel = resolve_channel(params)
    ts = require(params, "ts", "message_not_found")
    _own_message(state, channel, ts, "cant_delete_message")
    state.delete_message(channel, ts)
    return {"ok": True, "channel": channel, "ts": ts}


def get_permalink(state: SlackState, params: dict[str, Any]) -> dict[str, Any]:
    channel = resolve_channel(params)
    ts = require(params, "message_ts", "message_not_found")
    if state.message(channel, ts) is None:
        raise ApiError("message_not_found")
    link = f"https://{state.workspace.team_domain}.slack.com/archives/{channel}/p{ts.replace('.', '')}"
    return {"ok": True, "channel": channel, "permalink": link}


def _react(state: SlackState, params: dict[str, Any], *, add: bool) -> dict[str, Any]:
    channel = resolve_channel(params)
    name = require(params, "name", "invalid_name")
    with state.cond:  # read-modify-write of one message
        return _apply_reaction(state, channel, params.get("timestamp") or "", name, add=add)


def _apply_reaction(state: SlackState, channel: str, ts: str, name: str, *, add: bool) -> dict[str, Any]:
    message = state.message(channel, ts)
    if message is None:
        raise ApiError("message_not_found")
    bot = state.workspace.bot_user_id
    reactions = message.setdefault("reactions", [])
    entry = next((r for r in reactions if r["name"] == name), None)
    if add:
        if entry is None:
            entry = {"name": name, "users": [], "count": 0}
            reactions.append(entry)
        elif bot in entry["users"]:
            raise ApiError("already_reacted")
        entry["users"].append(bot)
    else:
        if not entry or bot not in entry["users"]:
            raise ApiError("no_reaction")
        entry["users"].remove(bot)
    entry["count"] = len(entry["users"])
    message["reactions"] = [r for r in reactions if r["count"]]
    state.replace_message(channel, message["ts"], message)
    return {"ok": True}


METHODS: dict[str, Handler] = {
    "chat.postMessage": post_message,
    "chat.update": update,
    "chat.postEphemeral": post_ephemeral,
    "chat.startStream": start_stream,
    "chat.appendStream": append_stream,
    "chat.stopStream": stop_stream,
    "chat.delete": delete,
    "chat.getPermalink": get_permalink,
    "reactions.add": lambda state, params: _react(state, params, add=True),
    "reactions.remove": lambda state, params: _react(state, params, add=False),
}

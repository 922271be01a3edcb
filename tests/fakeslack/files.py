"""The three-step file upload slack_sdk's ``files_upload_v2`` performs.

1. ``files.getUploadURLExternal`` reserves a file id and hands out an upload URL
   (on this same fake server);
2. the client POSTs the raw bytes to that URL (:func:`receive_upload`);
3. ``files.completeUploadExternal`` finishes the file and, given a channel,
   shares it there as a message.

The retired ``files.upload`` answers ``method_deprecated``, as Slack does since 2025.
"""

from __future__ import annotations

import mimetypes
import secrets
import time
from typing import Any

from .chat import flag, require, resolve_channel
from .state import ApiError, Handler, SlackState
from .workspace import new_id, new_ts

__all__ = ["METHODS", "receive_upload"]


def get_upload_url(state: SlackState, params: dict[str, Any]) -> dict[str, Any]:
    filename = require(params, "filename", "invalid_arguments")
    try:
        length = int(require(params, "length", "invalid_arguments"))
    except ValueError:
        raise ApiError("invalid_arguments") from None
    if length <= 0:
        raise ApiError("invalid_arguments")
    file_id, token = new_id("F"), secrets.token_urlsafe(12)
    with state.cond:
        state.files[file_id] = {"id": file_id, "name": filename, "title": filename, "length": length,
                                "alt_txt": params.get("alt_txt"), "upload_token": token, "content": None,
                                "completed": False, "channels": [], "thread_ts": None}
    return {"ok": True, "upload_url": f"{state.http_url}/upload/v1/{token}", "file_id": file_id}


def receive_upload(state: SlackState, token: str, body: bytes) -> tuple[int, str]:
    """Store the bytes POSTed to an upload URL; returns the HTTP status and text body Slack sends."""
    with state.cond:
        record = next((f for f in state.files.values() if f["upload_token"] == token), None)
        if record is None:
            return 404, "not found"
        if len(body) != record["length"]:
            state.warnings.append(f"upload of {record['id']}: {len(body)} bytes sent, length said {record['length']}")
        record["content"] = body
        state.notify()
    return 200, f"OK - {len(body)}"


def _public(state: SlackState, record: dict[str, Any]) -> dict[str, Any]:
    ws = state.workspace
    name = record["name"]
    mimetype = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return {"id": record["id"], "created": int(time.time()), "timestamp": int(time.time()), "name": name,
            "title": record["title"], "mimetype": mimetype, "filetype": name.rsplit(".", 1)[-1].lower(),
            "user": ws.bot_user_id, "size": len(record["content"] or b""), "mode": "hosted",
            "is_external": False, "url_private": f"{state.http_url}/files-pri/{ws.team_id}-{record['id']}/{name}",
            "permalink": f"https://{ws.team_domain}.slack.com/files/{ws.bot_user_id}/{record['id']}/{name}"}


def complete_upload(state: SlackState, params: dict[str, Any]) -> dict[str, Any]:
    items = params.get("files")
    if not isinstance(items, list) or not items:
        raise ApiError("invalid_arguments")
    channels = [resolve_channel({"channel": c}) for c in str(params.get("channels") or "").split(",") if c]
    if params.get("channel_id"):
        channels.insert(0, resolve_channel(params, "channel_id"))
    thread_ts = params.get("thread_ts")
    public = []
    with state.cond:
        for item in items:
            record = state.files.get((item or {}).get("id"))
            if record is None or record["content"] is None:
                raise ApiError("file_not_found")
            record.update(completed=True, title=item.get("title") or record["title"],
                          channels=channels, thread_ts=thread_ts)
            public.append(_public(state, record))
    ws = state.workspace
    for channel in channels:
        message = {"type": "message", "user": ws.bot_user_id, "bot_id": ws.bot_id, "app_id": ws.app_id,
                   "text": params.get("initial_comment") or "", "files": public, "upload": True, "ts": new_ts()}
        if thread_ts:
            message["thread_ts"] = thread_ts
            if flag(params, "reply_broadcast"):
                message["subtype"] = "thread_broadcast"
        state.add_message(channel, message)
    return {"ok": True, "files": public}


def _deprecated(state: SlackState, params: dict[str, Any]) -> dict[str, Any]:
    raise ApiError("method_deprecated")


METHODS: dict[str, Handler] = {
    "files.getUploadURLExternal": get_upload_url,
    "files.completeUploadExternal": complete_upload,
    "files.upload": _deprecated,
}

"""Who and where: ``auth.test``, ``apps.connections.open``, ``users.*``, ``usergroups.users.list``,
``conversations.*``, assistant threads."""

from __future__ import annotations

import re
import time
from typing import Any

from .chat import flag, require, resolve_channel
from .state import ApiError, Handler, SlackState
from .workspace import dm_channel_id, new_id

__all__ = ["METHODS", "MAX_PROMPTS", "MAX_LOADING_MESSAGES", "STATUS_LIFETIME_S"]

MAX_PROMPTS = 4  # assistant.threads.setSuggestedPrompts: "up to four suggested prompts"
MAX_LOADING_MESSAGES = 10  # assistant.threads.setStatus's loading_messages
STATUS_LIFETIME_S = 120.0  # "a two minute timeout applies" when no message is sent
_TS = re.compile(r"^\d+\.\d+$")


def auth_test(state: SlackState, params: dict[str, Any]) -> dict[str, Any]:
    ws = state.workspace
    return {"ok": True, "url": f"https://{ws.team_domain}.slack.com/", "team": ws.team_name,
            "user": ws.bot_name, "team_id": ws.team_id, "user_id": ws.bot_user_id, "bot_id": ws.bot_id,
            "is_enterprise_install": False}


def connections_open(state: SlackState, params: dict[str, Any]) -> dict[str, Any]:
    # Slack's URL has a /link/ path and a single-use ticket; slack_sdk's builtin
    # client also needs the path, it sends "GET {path}?{query}" verbatim.
    ticket = new_id("", 24).lower()
    state.issue_ticket(ticket)
    return {"ok": True, "url": f"{state.ws_url}/link/?ticket={ticket}&app_id={state.workspace.app_id}"}


def users_info(state: SlackState, params: dict[str, Any]) -> dict[str, Any]:
    user_id = require(params, "user", "user_not_found")
    with state.cond:
        user = state.users.get(user_id)
    if user is None:
        raise ApiError("user_not_found")
    ws = state.workspace
    profile = {"real_name": user.real_name, "display_name": user.name, "email": user.email,
               "team": ws.team_id, "real_name_normalized": user.real_name}
    return {"ok": True, "user": {
        "id": user.id, "team_id": ws.team_id, "name": user.name, "deleted": user.deleted,
        "real_name": user.real_name, "tz": user.tz, "tz_offset": user.tz_offset, "profile": profile,
        "is_admin": user.is_admin, "is_owner": False, "is_bot": user.is_bot, "is_app_user": False,
        "updated": 1700000000}}


def usergroups_users_list(state: SlackState, params: dict[str, Any]) -> dict[str, Any]:
    group = require(params, "usergroup", "invalid_arguments")
    with state.cond:
        members = state.usergroups.get(group)
    if members is None:
        raise ApiError("no_such_subteam")
    return {"ok": True, "users": list(members)}


def conversations_open(state: SlackState, params: dict[str, Any]) -> dict[str, Any]:
    if params.get("channel"):
        return {"ok": True, "channel": {"id": resolve_channel(params)}}
    users = [u for u in str(require(params, "users", "users_list_not_supplied")).split(",") if u]
    if len(users) > 8:
        raise ApiError("too_many_users")
    channel_id = dm_channel_id(users[0]) if len(users) == 1 else "G" + "".join(sorted(u[1:4] for u in users))
    with state.cond:
        already = channel_id in state.channels
        state.channels.setdefault(channel_id, {})
    response: dict[str, Any] = {"ok": True, "channel": {"id": channel_id}}
    if already:
        response.update(no_op=True, already_open=True)
    return response


def _known_channel(state: SlackState, params: dict[str, Any]) -> str:
    channel = resolve_channel(params)
    with state.cond:
        if channel not in state.channels and not channel.startswith("D"):  # app DMs always exist
            raise ApiError("channel_not_found")
    return channel


def _listed(messages: list[dict[str, Any]], params: dict[str, Any]) -> list[dict[str, Any]]:
    """Message metadata is listed only when asked for with ``include_all_metadata``."""
    if flag(params, "include_all_metadata"):
        return [dict(m) for m in messages]
    return [{k: v for k, v in m.items() if k != "metadata"} for m in messages]


def conversations_history(state: SlackState, params: dict[str, Any]) -> dict[str, Any]:
    messages = state.history(_known_channel(state, params))
    return {"ok": True, "messages": _listed(list(reversed(messages)), params), "has_more": False}


def conversations_replies(state: SlackState, params: dict[str, Any]) -> dict[str, Any]:
    messages = state.replies(_known_channel(state, params), str(require(params, "ts", "thread_not_found")))
    if not messages:
        raise ApiError("thread_not_found")
    return {"ok": True, "messages": _listed(messages, params), "has_more": False}


def _thread_ts(params: dict[str, Any]) -> str:
    thread_ts = params.get("thread_ts")
    if not isinstance(thread_ts, str) or not _TS.match(thread_ts):
        raise ApiError("invalid_thread_ts")
    return thread_ts


def set_status(state: SlackState, params: dict[str, Any]) -> dict[str, Any]:
    """``assistant.threads.setStatus``: ``""`` clears it; Slack clears it too when the app replies in the thread
    (``SlackState.reply_clears_status``) or after :data:`STATUS_LIFETIME_S`. At most 10 loading messages."""
    channel = resolve_channel(params, "channel_id")
    thread_ts = _thread_ts(params)
    if "status" not in params or not isinstance(params["status"], str):
        raise ApiError.invalid("invalid_arguments", ["missing required field: status"])
    loading = params.get("loading_messages")
    if loading is not None:
        if not isinstance(loading, list) or not all(isinstance(m, str) and m for m in loading):
            raise ApiError.invalid("invalid_arguments",
                                   ["must be an array of strings [json-pointer:/loading_messages]"])
        if len(loading) > MAX_LOADING_MESSAGES:
            raise ApiError.invalid("invalid_arguments", [
                f"no more than {MAX_LOADING_MESSAGES} items allowed [json-pointer:/loading_messages]"])
    with state.cond:
        state.statuses[(channel, thread_ts)] = (params["status"], time.monotonic())
        state.notify()
    return {"ok": True}


def set_suggested_prompts(state: SlackState, params: dict[str, Any]) -> dict[str, Any]:
    """``assistant.threads.setSuggestedPrompts`` for an app with ``agent_view``: up to four prompts, each with a
    ``title`` and a ``message``, shown for the channel's latest message. Passed a ``thread_ts`` (the legacy
    assistant view's argument), Slack answers ok and shows nothing: the fake does the same and warns."""
    channel = resolve_channel(params, "channel_id")
    prompts = params.get("prompts")
    if not isinstance(prompts, list) or not prompts:
        raise ApiError.invalid("invalid_arguments", ["must provide at least 1 item [json-pointer:/prompts]"])
    if len(prompts) > MAX_PROMPTS:
        raise ApiError.invalid("invalid_arguments",
                               [f"no more than {MAX_PROMPTS} items allowed [json-pointer:/prompts]"])
    for i, prompt in enumerate(prompts):
        for key in ("title", "message"):
            if not isinstance(prompt, dict) or not isinstance(prompt.get(key), str) or not prompt[key].strip():
                raise ApiError.invalid("invalid_arguments",
                                       [f"missing required field: {key} [json-pointer:/prompts/{i}]"])
    if params.get("thread_ts"):
        state.warn(f"setSuggestedPrompts in {channel} with thread_ts: ignored by Slack for an agent_view app")
        return {"ok": True}
    with state.cond:
        state.prompts[channel] = {"title": params.get("title"), "prompts": prompts}
        state.notify()
    return {"ok": True}


def assistant_ok(state: SlackState, params: dict[str, Any]) -> dict[str, Any]:
    resolve_channel(params, "channel_id")
    _thread_ts(params)
    return {"ok": True}


METHODS: dict[str, Handler] = {
    "auth.test": auth_test,
    "apps.connections.open": connections_open,
    "users.info": users_info,
    "usergroups.users.list": usergroups_users_list,
    "conversations.open": conversations_open,
    "conversations.history": conversations_history,
    "conversations.replies": conversations_replies,
    "assistant.threads.setStatus": set_status,
    "assistant.threads.setSuggestedPrompts": set_suggested_prompts,
    "assistant.threads.setTitle": assistant_ok,
}

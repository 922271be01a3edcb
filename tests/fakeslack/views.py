"""``views.*``: modals opened with a trigger, updated by id, and the App Home tab.

A Home tab is one view per user (``views.publish`` replaces it and keeps its id), kept apart from the modals
(``FakeSlack.views()``) and read with ``FakeSlack.home_view(user)``. As on Slack: ``user_id`` is required
(``invalid_arguments``), the view is checked like a modal's blocks (at most 100), a stale ``hash`` is a
``hash_conflict``, and an app whose Home tab is off in its settings gets ``not_enabled``.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from .blockkit import view_errors, with_block_ids
from .chat import require
from .state import ApiError, Handler, SlackState
from .workspace import new_id

__all__ = ["METHODS", "TRIGGER_LIFETIME_S", "HomeTabs", "home_tabs"]

# Slack's trigger_ids expire three seconds after the user's action and can be exchanged once.
TRIGGER_LIFETIME_S = 3.0


def _new_hash() -> str:
    return f"{int(time.time())}.{secrets.token_hex(4)}"


def _checked_view(params: dict[str, Any]) -> dict[str, Any]:
    view = params.get("view")
    problems = view_errors(view)
    if problems:
        raise ApiError.invalid("invalid_arguments", problems)
    return view


def _exchange_trigger(state: SlackState, params: dict[str, Any]) -> None:
    trigger_id = require(params, "trigger_id", "invalid_trigger_id")
    with state.cond:
        issued = state.triggers.get(trigger_id)
        if issued is None:
            raise ApiError("invalid_trigger_id")
        if trigger_id in state.exchanged_triggers:
            raise ApiError("exchanged_trigger_id")
        if time.monotonic() - issued > TRIGGER_LIFETIME_S:
            raise ApiError("expired_trigger_id")
        state.exchanged_triggers.add(trigger_id)


class HomeTabs:
    """The Home tab of each user (the published view, by user id), and whether the app has a Home tab at all."""

    def __init__(self, *, enabled: bool = True) -> None:
        self.enabled = enabled
        self.by_user: dict[str, dict[str, Any]] = {}


def home_tabs(state: SlackState) -> HomeTabs:
    """The Home tabs of ``state``'s workspace (created on first use, enabled)."""
    with state.cond:
        tabs = getattr(state, "home_tabs", None)
        if tabs is None:
            tabs = HomeTabs()
            state.home_tabs = tabs  # type: ignore[attr-defined]
        return tabs


def _view_object(state: SlackState, view: dict[str, Any], *, root: str | None = None,
                 previous: str | None = None, view_id: str | None = None) -> dict[str, Any]:
    """The view as Slack stores and returns it: ids, hash, state, block ids filled in."""
    ws = state.workspace
    view_id = view_id or new_id("V")
    stored = {
        "id": view_id, "team_id": ws.team_id, "type": view["type"], "blocks": with_block_ids(view.get("blocks", [])),
        "private_metadata": view.get("private_metadata", ""), "callback_id": view.get("callback_id", ""),
        "state": {"values": {}}, "hash": _new_hash(), "clear_on_close": bool(view.get("clear_on_close")),
        "notify_on_close": bool(view.get("notify_on_close")), "root_view_id": root or view_id,
        "previous_view_id": previous, "app_id": ws.app_id, "external_id": view.get("external_id", ""),
        "app_installed_team_id": ws.team_id, "bot_id": ws.bot_id,
    }
    for key in ("title", "submit", "close"):
        if key in view:
            stored[key] = view[key]
    return stored


def _stored(state: SlackState, view: dict[str, Any], *, root: str | None = None,
            previous: str | None = None, view_id: str | None = None) -> dict[str, Any]:
    stored = _view_object(state, view, root=root, previous=previous, view_id=view_id)
    with state.cond:
        state.views[stored["id"]] = stored
        state.notify()
    return dict(stored)


def views_open(state: SlackState, params: dict[str, Any]) -> dict[str, Any]:
    view = _checked_view(params)
    _exchange_trigger(state, params)
    return {"ok": True, "view": _stored(state, view)}


def views_push(state: SlackState, params: dict[str, Any]) -> dict[str, Any]:
    view = _checked_view(params)
    _exchange_trigger(state, params)
    with state.cond:
        top = next(reversed(state.views.values()), None)  # the most recently opened view
    root = top["root_view_id"] if top else None
    return {"ok": True, "view": _stored(state, view, root=root, previous=top["id"] if top else None)}


def views_update(state: SlackState, params: dict[str, Any]) -> dict[str, Any]:
    view = _checked_view(params)
    with state.cond:
        if params.get("view_id"):
            current = state.views.get(params["view_id"])
        else:
            external = require(params, "external_id", "not_found")
            current = next((v for v in state.views.values() if v["external_id"] == external), None)
        if current is None:
            raise ApiError("not_found")
        if params.get("hash") and params["hash"] != current["hash"]:
            raise ApiError("hash_conflict")
    return {"ok": True, "view": _stored(state, view, root=current["root_view_id"],
                                        previous=current["previous_view_id"], view_id=current["id"])}


def views_publish(state: SlackState, params: dict[str, Any]) -> dict[str, Any]:
    user_id = params.get("user_id")
    if not isinstance(user_id, str) or user_id[:1] not in ("U", "W"):
        raise ApiError.invalid("invalid_arguments", ["invalid `user_id`"])
    view = _checked_view(params)
    if view["type"] != "home":
        raise ApiError.invalid("invalid_arguments", ["must be home [json-pointer:/view/type]"])
    tabs = home_tabs(state)
    with state.cond:
        if not tabs.enabled:
            raise ApiError("not_enabled")
        current = tabs.by_user.get(user_id)
        if params.get("hash") and current is not None and params["hash"] != current["hash"]:
            raise ApiError("hash_conflict")
        stored = _view_object(state, view, view_id=current["id"] if current else None)
        tabs.by_user[user_id] = stored
        state.notify()
    return {"ok": True, "view": dict(stored)}


METHODS: dict[str, Handler] = {
    "views.open": views_open,
    "views.push": views_push,
    "views.update": views_update,
    "views.publish": views_publish,
}

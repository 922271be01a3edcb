"""Socket Mode envelopes in the shapes Slack documents, built by pure functions.

Every builder returns a whole envelope (``type``, ``envelope_id``,
``payload``, ``accepts_response_payload``) ready for ``FakeSlack.push``.
Defaults describe the usual case for this bot: the workspace's default user
writing to the bot in their DM. Builders that answer a message or a view take
the message or view itself (as ``FakeSlack.messages()`` or ``views()`` return
it) and refuse to click a button that is not there.
"""

from __future__ import annotations

import copy
import secrets
import time
import uuid
from collections.abc import Mapping
from typing import Any

from .workspace import Workspace, dm_channel_id, new_envelope_id, new_id, new_trigger_id, new_ts

__all__ = ["Payloads", "redelivery"]

# Payload fields the fake keeps on stored messages that Slack would not send back.
_STORE_ONLY = ("channel", "recipient")


def _channel_type(channel: str) -> str:
    return {"D": "im", "G": "group", "C": "channel"}.get(channel[:1], "channel")


def _rich_text(text: str) -> list[dict[str, Any]]:
    return [{"type": "rich_text", "block_id": secrets.token_hex(3), "elements": [
        {"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}]}]


def _find_element(blocks: list[dict[str, Any]], action_id: str,
                  block_id: str | None = None) -> tuple[str, dict[str, Any]] | None:
    for block in blocks or []:
        if block_id is not None and block.get("block_id") != block_id:
            continue
        candidates = list(block.get("elements") or []) + [block.get("accessory"), block.get("element")]
        for element in candidates:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return block.get("block_id") or secrets.token_hex(3), element
    return None


def _options(element: dict[str, Any]) -> list[dict[str, Any]]:
    groups = element.get("option_groups") or []
    return list(element.get("options") or []) + [o for g in groups for o in g.get("options", [])]


def _option(element: dict[str, Any], value: str) -> dict[str, Any]:
    for option in _options(element):
        if option.get("value") == value:
            return option
    raise ValueError(f"{element.get('action_id')!r} has no option with value {value!r}")


def _state_value(element: dict[str, Any], value: Any) -> dict[str, Any]:
    kind = element["type"]
    single = {"users_select": "selected_user", "conversations_select": "selected_conversation",
              "channels_select": "selected_channel", "datepicker": "selected_date", "timepicker": "selected_time"}
    multi = {"multi_users_select": "selected_users", "multi_conversations_select": "selected_conversations",
             "multi_channels_select": "selected_channels"}
    if kind in ("static_select", "external_select", "radio_buttons"):
        return {"type": kind, "selected_option": None if value is None else _option(element, value)}
    if kind in ("multi_static_select", "multi_external_select", "checkboxes"):
        return {"type": kind, "selected_options": [_option(element, v) for v in value or []]}
    if kind in single:
        return {"type": kind, single[kind]: value}
    if kind in multi:
        return {"type": kind, multi[kind]: list(value or [])}
    return {"type": kind, "value": value}


def redelivery(envelope: dict[str, Any], *, reason: str = "timeout") -> dict[str, Any]:
    """The same event delivered again, as Slack does when an ack is late or missing.

    A new ``envelope_id``, ``retry_attempt`` one higher, the given
    ``retry_reason``; the payload (and so its ``event_id``) is unchanged.
    """
    again = copy.deepcopy(envelope)
    again.update(envelope_id=new_envelope_id(), retry_attempt=int(envelope.get("retry_attempt") or 0) + 1,
                 retry_reason=reason)
    return again


class Payloads:
    """Builds envelopes for one workspace; ``response_url``s point at ``hooks_url``.

    The default ``hooks_url`` (port 9 on 127.0.0.1, where nothing listens)
    keeps standalone use off the network; ``FakeSlack.payloads`` points it at
    the fake itself so ``respond()`` calls are recorded.
    """

    def __init__(self, workspace: Workspace | None = None, *, hooks_url: str = "http://127.0.0.1:9") -> None:
        self.workspace = workspace or Workspace()
        self.hooks_url = hooks_url

    # -- shared parts ------------------------------------------------------

    def _user(self, user_id: str | None) -> dict[str, Any]:
        user_id = user_id or self.workspace.user.id
        name = self.workspace.user.name if user_id == self.workspace.user.id else user_id.lower()
        return {"id": user_id, "username": name, "name": name, "team_id": self.workspace.team_id}

    def _team(self) -> dict[str, Any]:
        return {"id": self.workspace.team_id, "domain": self.workspace.team_domain}

    def _response_url(self, kind: str) -> str:
        return f"{self.hooks_url}/hooks/{kind}-{secrets.token_urlsafe(12)}"

    def events_api(self, event: dict[str, Any]) -> dict[str, Any]:
        """Wrap any event in an ``event_callback`` payload and an ``events_api`` envelope."""
        ws = self.workspace
        payload = {
            "token": "fakeslack-verification-token", "team_id": ws.team_id, "context_team_id": ws.team_id,
            "context_enterprise_id": None, "api_app_id": ws.app_id, "event": event, "type": "event_callback",
            "event_id": new_id("Ev"), "event_time": int(time.time()),
            "authorizations": [{"enterprise_id": None, "team_id": ws.team_id, "user_id": ws.bot_user_id,
                                "is_bot": True, "is_enterprise_install": False}],
            "is_ext_shared_channel": False, "event_context": "4-" + secrets.token_urlsafe(24)}
        return {"envelope_id": new_envelope_id(), "type": "events_api", "payload": payload,
                "accepts_response_payload": False, "retry_attempt": 0, "retry_reason": ""}

    # -- Events API --------------------------------------------------------

    def message(self, text: str, *, user: str | None = None, channel: str | None = None,
                ts: str | None = None, thread_ts: str | None = None, parent_user_id: str | None = None,
                subtype: str | None = None, bot_id: str | None = None,
                files: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """A ``message`` event; by default the default user writing in their DM with the bot."""
        user = user or self.workspace.user.id
        channel = channel or dm_channel_id(user)
        ts = ts or new_ts()
        event: dict[str, Any] = {"type": "message", "text": text, "user": user, "ts": ts,
                                 "team": self.workspace.team_id, "channel": channel, "event_ts": ts,
                                 "channel_type": _channel_type(channel)}
        if subtype:
            event["subtype"] = subtype
        if bot_id:
            event["bot_id"] = bot_id
            if bot_id == self.workspace.bot_id:
                event["app_id"] = self.workspace.app_id
        elif not subtype:
            event.update(client_msg_id=str(uuid.uuid4()), blocks=_rich_text(text))
        if thread_ts:
            event["thread_ts"] = thread_ts
            if parent_user_id:
                event["parent_user_id"] = parent_user_id
        if files:
            event.update(files=files, upload=False, display_as_bot=False)
        return self.events_api(event)

    def bot_message(self, text: str, *, channel: str | None = None, ts: str | None = None,
                    thread_ts: str | None = None) -> dict[str, Any]:
        """The ``message`` event Slack echoes for the bot's own post (Bolt should ignore it)."""
        ws = self.workspace
        return self.message(text, user=ws.bot_user_id, channel=channel or dm_channel_id(ws.user.id), ts=ts,
                            thread_ts=thread_ts, bot_id=ws.bot_id)

    def message_changed(self, previous: dict[str, Any], *, text: str,
                        channel: str | None = None) -> dict[str, Any]:
        """The user edited ``previous`` (a message dict) to read ``text``."""
        channel = channel or previous.get("channel") or dm_channel_id(previous["user"])
        edited = {k: v for k, v in previous.items() if k not in _STORE_ONLY}
        edited.update(text=text, edited={"user": previous.get("user"), "ts": new_ts()})
        if "blocks" in edited:
            edited["blocks"] = _rich_text(text)
        ts = new_ts()
        return self.events_api({"type": "message", "subtype": "message_changed", "hidden": True,
                                "message": edited, "previous_message": previous, "channel": channel,
                                "ts": ts, "event_ts": ts, "channel_type": _channel_type(channel)})

    def message_deleted(self, previous: dict[str, Any], *, channel: str | None = None) -> dict[str, Any]:
        """The user deleted ``previous`` (a message dict)."""
        channel = channel or previous.get("channel") or dm_channel_id(previous["user"])
        ts = new_ts()
        return self.events_api({"type": "message", "subtype": "message_deleted", "hidden": True,
                                "deleted_ts": previous["ts"], "previous_message": previous, "channel": channel,
                                "ts": ts, "event_ts": ts, "channel_type": _channel_type(channel)})

    def app_mention(self, text: str, *, user: str | None = None, channel: str = "C0FAKECHAN",
                    ts: str | None = None, thread_ts: str | None = None) -> dict[str, Any]:
        """An ``app_mention`` in a channel; the ``<@bot>`` mention is prepended when missing."""
        mention = f"<@{self.workspace.bot_user_id}>"
        text = text if mention in text else f"{mention} {text}"
        ts = ts or new_ts()
        event = {"type": "app_mention", "user": user or self.workspace.user.id, "text": text, "ts": ts,
                 "client_msg_id": str(uuid.uuid4()), "team": self.workspace.team_id, "blocks": _rich_text(text),
                 "channel": channel, "event_ts": ts}
        if thread_ts:
            event["thread_ts"] = thread_ts
        return self.events_api(event)

    def assistant_thread_started(self, *, user: str | None = None, thread_ts: str | None = None,
                                 context_channel: str | None = None) -> dict[str, Any]:
        """The user opened a new thread in the app's assistant side panel."""
        user = user or self.workspace.user.id
        context = {"channel_id": context_channel, "team_id": self.workspace.team_id, "enterprise_id": None}
        return self.events_api({"type": "assistant_thread_started", "event_ts": new_ts(), "assistant_thread": {
            "user_id": user, "context": {k: v for k, v in context.items() if v},
            "channel_id": dm_channel_id(user), "thread_ts": thread_ts or new_ts()}})

    def app_home_opened(self, *, tab: str = "messages", user: str | None = None,
                        view: dict[str, Any] | None = None) -> dict[str, Any]:
        """The user opened the app's Messages (``tab="messages"``) or Home tab; ``view`` is the Home view the app
        last published for them, which Slack sends along with ``tab="home"`` once there is one."""
        user = user or self.workspace.user.id
        event = {"type": "app_home_opened", "user": user, "channel": dm_channel_id(user), "tab": tab,
                 "event_ts": new_ts()}
        if view is not None and tab == "home":
            event["view"] = view
        return self.events_api(event)

    # -- slash commands and interactivity ------------------------------------

    def slash_command(self, text: str = "", *, command: str = "/itsupport", user: str | None = None,
                      channel: str | None = None) -> dict[str, Any]:
        """A slash command; form fields are strings, as Slack sends them."""
        user_info = self._user(user)
        channel = channel or dm_channel_id(user_info["id"])
        payload = {"token": "fakeslack-verification-token", "team_id": self.workspace.team_id,
                   "team_domain": self.workspace.team_domain, "channel_id": channel,
                   "channel_name": "directmessage" if channel.startswith("D") else "it-help",
                   "user_id": user_info["id"], "user_name": user_info["name"], "command": command, "text": text,
                   "api_app_id": self.workspace.app_id, "is_enterprise_install": "false",
                   "response_url": self._response_url("commands"), "trigger_id": new_trigger_id()}
        return {"envelope_id": new_envelope_id(), "type": "slash_commands", "payload": payload,
                "accepts_response_payload": True}

    def _interactive(self, payload: dict[str, Any], *, accepts_response_payload: bool) -> dict[str, Any]:
        payload = {"api_app_id": self.workspace.app_id, "token": "fakeslack-verification-token",
                   "team": self._team(), "enterprise": None, "is_enterprise_install": False, **payload}
        return {"envelope_id": new_envelope_id(), "type": "interactive", "payload": payload,
                "accepts_response_payload": accepts_response_payload}

    def block_actions(self, *, action_id: str, message: dict[str, Any] | None = None,
                      view: dict[str, Any] | None = None, channel: str | None = None, value: Any = None,
                      user: str | None = None, feedback: str | None = None,
                      block_id: str | None = None) -> dict[str, Any]:
        """The user clicked (or chose in) element ``action_id`` of ``message`` or ``view``.

        The element must exist in its blocks (in block ``block_id``, when several blocks hold one with that
        ``action_id``, as a list of items each with its own button); its ``block_id``, type, text and
        ``value`` fill the action. For a select, ``value`` picks the option;
        for ``feedback_buttons``, ``feedback`` says which side: ``"positive"`` (👍) or ``"negative"`` (👎).
        """
        source = message if message is not None else view
        if source is None:
            raise ValueError("block_actions needs the message or view the element lives in")
        found = _find_element(source.get("blocks") or [], action_id, block_id)
        if found is None:
            raise LookupError(f"no element with action_id {action_id!r} in the {'message' if message else 'view'}")
        block_id, element = found
        action: dict[str, Any] = {"type": element["type"], "block_id": block_id, "action_id": action_id,
                                  "action_ts": f"{time.time():.6f}"}
        if element["type"] == "feedback_buttons":  # Slack sends the pressed side's text and value
            if feedback not in ("positive", "negative"):
                raise ValueError("a feedback_buttons click needs feedback='positive' or 'negative'")
            side = element[f"{feedback}_button"]
            action.update(text=side.get("text"), value=value if value is not None else side.get("value"))
        elif element["type"] == "button":
            action.update(text=element.get("text"), value=value if value is not None else element.get("value"))
            if element.get("style"):
                action["style"] = element["style"]
        else:
            action.update({k: v for k, v in _state_value(element, value).items() if k != "type"})
        user_info = self._user(user)
        payload: dict[str, Any] = {"type": "block_actions", "user": user_info, "trigger_id": new_trigger_id(),
                                   "actions": [action], "state": {"values": {}}}
        if message is not None:
            channel = channel or message.get("channel") or dm_channel_id(user_info["id"])
            ephemeral = "recipient" in message
            container = {"type": "message", "message_ts": message["ts"], "channel_id": channel,
                         "is_ephemeral": ephemeral}
            if message.get("thread_ts"):
                container["thread_ts"] = message["thread_ts"]
            payload.update(container=container, response_url=self._response_url("actions"),
                           channel={"id": channel, "name": "directmessage" if channel[0] == "D" else "it-help"})
            if not ephemeral:
                payload["message"] = {k: v for k, v in message.items() if k not in _STORE_ONLY}
        else:
            payload.update(container={"type": "view", "view_id": view["id"]}, view=view)
        return self._interactive(payload, accepts_response_payload=True)  # as in Slack's Socket Mode guide

    def message_shortcut(self, message: dict[str, Any], *, callback_id: str, user: str | None = None,
                         channel: str | None = None) -> dict[str, Any]:
        """The user chose the app's message shortcut ``callback_id`` in the "More actions" menu of ``message``.

        As Slack documents it (``type: message_action``): ``callback_id``, a ``trigger_id`` (three seconds to open
        a modal), a ``response_url``, the ``user`` who used it, the ``channel`` the message is in (``id``,
        ``name``), the ``team``, ``message_ts`` and the whole ``message``. Slack waits for an empty ack.
        """
        channel = channel or message.get("channel") or dm_channel_id(message.get("user") or self.workspace.user.id)
        payload = {"type": "message_action", "callback_id": callback_id, "trigger_id": new_trigger_id(),
                   "action_ts": f"{time.time():.6f}", "message_ts": message["ts"],
                   "response_url": self._response_url("actions"), "user": self._user(user),
                   "channel": {"id": channel, "name": "directmessage" if channel[0] == "D" else "it-help"},
                   "message": {"type": "message", **{k: v for k, v in message.items() if k not in _STORE_ONLY}}}
        return self._interactive(payload, accepts_response_payload=False)

    def view_submission(self, view: dict[str, Any], *, values: Mapping[str, Any] | None = None,
                        user: str | None = None) -> dict[str, Any]:
        """The user submitted ``view``; ``values`` maps each input's ``action_id`` to what they entered.

        Text inputs take a string, selects and radio buttons an option value,
        multi-selects and checkboxes a list of option values, user and
        conversation pickers ids. Inputs not in ``values`` submit empty.
        """
        values = dict(values or {})
        state: dict[str, dict[str, Any]] = {}
        for block in view.get("blocks") or []:
            element = block.get("element") if block.get("type") == "input" else None
            if element and element.get("action_id"):
                state.setdefault(block.get("block_id") or secrets.token_hex(3), {})[element["action_id"]] = \
                    _state_value(element, values.pop(element["action_id"], None))
        if values:
            raise LookupError(f"no input with action_id {sorted(values)} in the view")
        submitted = {**view, "state": {"values": state}}
        payload = {"type": "view_submission", "user": self._user(user), "trigger_id": new_trigger_id(),
                   "view": submitted, "response_urls": []}
        return self._interactive(payload, accepts_response_payload=True)

    def view_closed(self, view: dict[str, Any], *, user: str | None = None) -> dict[str, Any]:
        """The user dismissed ``view`` (sent only when it was opened with ``notify_on_close``)."""
        payload = {"type": "view_closed", "user": self._user(user), "view": view, "is_cleared": False}
        return self._interactive(payload, accepts_response_payload=False)

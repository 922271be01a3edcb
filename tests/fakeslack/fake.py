"""``FakeSlack``: the Web API and Socket Mode servers, and what tests ask of them."""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from . import directory, hooks, scopes
from .payloads import Payloads, redelivery
from .records import Ack, Call, Connection, Push
from .socketmode import SocketModeServer
from .state import Fault, Handler, SlackState
from .views import home_tabs
from .webapi import WebApiServer
from .workspace import User, Workspace, dm_channel_id

if TYPE_CHECKING:
    from slack_bolt import App
    from slack_bolt.adapter.socket_mode import SocketModeHandler
    from slack_sdk import WebClient

__all__ = ["FakeSlack"]

_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")
_STORED_EVENT_SUBTYPES = (None, "thread_broadcast", "file_share", "bot_message", "me_message")


class FakeSlack:
    """A local Slack: Web API over HTTP and Socket Mode over WebSocket, both on 127.0.0.1.

    Use it as a context manager, ``with FakeSlack.start() as fake:``; the
    servers pick free ports and everything stops on exit. Point the app at it
    with ``WebClient(base_url=fake.api_url, token=fake.bot_token)`` and
    ``SocketModeHandler(app, fake.app_token)`` (or ``fake.connect(app)``).

    ``delivery="round_robin"`` hands each pushed envelope to the next open
    Socket Mode connection in turn, as Slack spreads an app's events over its
    (up to 10) connections: several processes of one app each get a share.
    The default sends each to the newest connection.
    """

    def __init__(self, *, workspace: Workspace | None = None, bot_token: str = "xoxb-0000-fakeslack-bot",
                 app_token: str = "xapp-1-A0FAKEAPP1-0000-fakeslack-app", scopes: Iterable[str] | None = None,
                 bot_events: Iterable[str] | None = None, home_tab: bool = True, delivery: str = "newest") -> None:
        self.workspace = workspace or Workspace()
        self.bot_token = bot_token
        self.app_token = app_token
        self.api_url = ""
        self.ws_url = ""
        self.payloads = Payloads(self.workspace)
        self._state = SlackState(self.workspace)
        # As installed from a manifest: the bot token's scopes (missing_scope beyond them) and the events the app
        # is subscribed to (push() refuses others); None for either allows everything.
        self._state.scopes = None if scopes is None else frozenset(scopes)
        self._state.bot_events = None if bot_events is None else frozenset(bot_events)
        # The manifest's features.app_home.home_tab_enabled: without it, views.publish answers not_enabled.
        home_tabs(self._state).enabled = home_tab
        self._webapi = WebApiServer(self._state, bot_token=bot_token, app_token=app_token)
        self._socket = SocketModeServer(self._state, delivery=delivery)

    # -- lifecycle ---------------------------------------------------------

    @classmethod
    @contextmanager
    def start(cls, **kwargs: Any) -> Iterator[FakeSlack]:
        """Run a fake for the ``with`` block; keyword arguments go to the constructor."""
        with cls(**kwargs) as fake:
            yield fake

    def open(self) -> FakeSlack:
        """Start both servers (ports chosen by the OS)."""
        proxies = [name for name in _PROXY_VARIABLES if os.environ.get(name, "").strip()]
        if proxies:
            # slack_sdk reads these even for 127.0.0.1 and has no NO_PROXY support.
            raise RuntimeError(f"fakeslack: {', '.join(proxies)} set; slack_sdk would send the fake's "
                               "traffic through that proxy. Unset it in the test (monkeypatch.delenv).")
        http_url = self._webapi.start()
        try:
            self.ws_url = self._socket.start()
        except BaseException:
            self._webapi.stop()
            raise
        self._state.http_url, self._state.ws_url = http_url, self.ws_url
        self.api_url = f"{http_url}/api/"  # slack_sdk appends the method name: keep the slash
        self.payloads = Payloads(self.workspace, hooks_url=http_url)
        return self

    def close(self) -> None:
        """Stop both servers and wait for their threads. Close the app's handler first."""
        self._socket.stop()
        self._webapi.stop()

    def __enter__(self) -> FakeSlack:
        return self.open()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- wiring an app to it -----------------------------------------------

    def web_client(self, **kwargs: Any) -> WebClient:
        """A real ``slack_sdk.WebClient`` pointed at this fake with the bot token."""
        from slack_sdk import WebClient

        return WebClient(base_url=self.api_url, token=self.bot_token, **kwargs)

    @contextmanager
    def connect(self, app: App, *, timeout: float = 5.0, handler: SocketModeHandler | None = None,
                **handler_kwargs: Any) -> Iterator[SocketModeHandler]:
        """Connect ``app`` through ``handler`` (default: slack_bolt's builtin ``SocketModeHandler``); closed on exit.

        The itbot tests pass the handler the bot runs with in production (``bot.app.socket_mode_handler``, on
        websocket-client); the fake's own tests use the builtin one. Returns once the fake has accepted the
        WebSocket, so pushes can start.
        """
        if handler is None:
            from slack_bolt.adapter.socket_mode import SocketModeHandler

            handler = SocketModeHandler(app, self.app_token, **handler_kwargs)
        opened_before = len(self.connections())
        try:
            handler.connect()
            self.wait_for_connection(count=opened_before + 1, timeout=timeout)
            yield handler
        finally:
            self.stop_handler(handler)

    def stop_handler(self, handler: SocketModeHandler) -> None:
        """Close a ``SocketModeHandler`` (and the fake's side of its socket) in milliseconds.

        For the builtin client, ``handler.close()`` alone waits out its 3 s socket
        read timeout (its ``disconnect()`` needs the lock the blocked ``recv()``
        holds). With auto-reconnect off, a server-side close frame ends that
        ``recv()`` first.
        """
        client = handler.client
        client.default_auto_reconnect_enabled = False
        client.auto_reconnect_enabled = False
        self._socket.close_connections(code=1000, reason="test finished")
        # Let the client's receive thread finish its own disconnect first: the builtin close()
        # checks ``sock is not None`` outside its lock and can crash on the race.
        session, deadline = client.current_session, time.monotonic() + 2.0
        while session is not None and _session_open(session) and time.monotonic() < deadline:
            time.sleep(0.005)
        # Its message loop polls a queue with a 1 s timeout; flag it closed and wake it now.
        client.closed = True
        client.message_queue.put(None)
        handler.close()

    # -- Socket Mode -------------------------------------------------------

    def push(self, envelope: dict[str, Any], *, timeout: float = 5.0, connection_id: int | None = None) -> str:
        """Send an envelope to the app over one open connection; returns its ``envelope_id``.

        The connection is ``connection_id`` when given, else the newest one (or the next in turn, for a fake
        started with ``delivery="round_robin"``); :meth:`pushed` tells which one it went to.

        Message events also enter the conversation store (so ``messages()``
        shows the user's side), trigger ids start their three-second life and
        response URLs become live, as when Slack itself sends the envelope.
        """
        self._check_subscribed(envelope)
        self._remember(envelope.get("type"), envelope.get("payload") or {})
        return self._socket.push(envelope, timeout=timeout, connection_id=connection_id)

    def _check_subscribed(self, envelope: dict[str, Any]) -> None:
        """Slack sends only the events the app subscribed to: pushing another is a mistake in the test or app."""
        subscribed = self._state.bot_events
        event = (envelope.get("payload") or {}).get("event") or {}
        if subscribed is None or envelope.get("type") != "events_api":
            return
        name = scopes.subscription(event)
        if name not in subscribed:
            raise ValueError(f"fakeslack: the app is not subscribed to {name!r} (bot_events: {sorted(subscribed)}); "
                             "Slack would never send it")

    def redeliver(self, envelope_id: str, *, reason: str = "timeout", timeout: float = 5.0,
                  connection_id: int | None = None) -> str:
        """Push a pushed envelope again as Slack's retry: same payload, ``retry_attempt`` + 1.

        Slack may retry on another of the app's connections: pass ``connection_id`` to choose which.
        """
        return self.push(redelivery(self.pushed(envelope_id).envelope, reason=reason), timeout=timeout,
                         connection_id=connection_id)

    def pushed(self, envelope_id: str) -> Push:
        """The record of a pushed envelope."""
        with self._state.cond:
            return self._state.pushes[envelope_id]

    def wait_for_ack(self, envelope_id: str, timeout: float = 5.0) -> Ack:
        """The first ack for ``envelope_id``, waiting up to ``timeout`` seconds."""
        def first() -> Ack | None:
            return next((a for a in self._state.acks if a.envelope_id == envelope_id), None)
        return self._state.wait_for(first, timeout, f"the ack of envelope {envelope_id}")

    def acks(self, envelope_id: str | None = None) -> list[Ack]:
        """Acks received so far, all or for one envelope."""
        with self._state.cond:
            return [a for a in self._state.acks if envelope_id in (None, a.envelope_id)]

    def connections(self) -> list[Connection]:
        """Every WebSocket connection opened so far, oldest first."""
        with self._state.cond:
            return list(self._state.connections.values())

    def wait_for_connection(self, count: int = 1, timeout: float = 5.0) -> Connection:
        """Wait until connection number ``count`` is the only open one; returns it.

        "Only" matters after a reconnect: slack_sdk's builtin client opens the
        new connection first and reads from it only once the old one is closed,
        which can take its 3 s socket timeout. Pushes sent in between wait too.
        """
        def settled() -> Connection | None:
            opened = list(self._state.connections.values())
            live = [c for c in opened if c.is_open]
            return live[0] if len(opened) >= count and len(live) == 1 and live[0].id >= count else None
        return self._state.wait_for(settled, timeout, f"Socket Mode connection #{count} to be the only open one")

    def wait_for_connections(self, count: int, *, timeout: float = 5.0, steady_s: float = 0.0) -> list[Connection]:
        """Wait until exactly ``count`` connections are open, and have been for ``steady_s`` seconds; returns them.

        For several app processes (or one app with several connections): a client that replaces its first
        connection right after starting settles before ``steady_s`` runs out.
        """
        deadline, steady_since, seen = time.monotonic() + timeout, 0.0, ()
        while True:  # polled: the fake is notified of changes, not of time passing
            live = [c for c in self.connections() if c.is_open]
            ids, now = tuple(c.id for c in live), time.monotonic()
            if ids != seen:
                steady_since, seen = now, ids
            if len(live) == count and now - steady_since >= steady_s:
                return live
            if now > deadline:
                raise TimeoutError(f"fakeslack: timed out after {timeout:.1f}s waiting for {count} steady Socket "
                                   f"Mode connections (open now: {list(ids)})")
            time.sleep(0.05)

    def close_connections(self, *, code: int = 1001, reason: str = "") -> None:
        """Close the open WebSockets with a close frame; the client should reconnect."""
        self._socket.close_connections(code=code, reason=reason)

    def send_disconnect(self, *, reason: str = "refresh_requested") -> None:
        """Send Slack's ``disconnect`` envelope; the client should open a new connection."""
        self._socket.send_disconnect(reason=reason)

    def drop_connections(self) -> None:
        """Kill the open WebSockets' TCP streams without a close frame."""
        self._socket.drop_connections()

    # -- Web API -----------------------------------------------------------

    def calls(self, method: str | None = None) -> list[Call]:
        """Web API calls received so far, all or of one method, oldest first."""
        with self._state.cond:
            return [c for c in self._state.calls if method in (None, c.method)]

    def wait_for_call(self, method: str, predicate: Callable[[Call], bool] | None = None, *,
                      timeout: float = 5.0, count: int = 1) -> Call:
        """The ``count``-th call of ``method`` matching ``predicate`` (made before or during the wait)."""
        def nth() -> Call | None:
            found = [c for c in self._state.calls if c.method == method and (predicate is None or predicate(c))]
            return found[count - 1] if len(found) >= count else None
        return self._state.wait_for(nth, timeout, f"call #{count} of {method}")

    def fail_next(self, method: str, *, status: int | None = None, error: str | None = None,
                  retry_after: int | None = None, times: int = 1, after_success: bool = False) -> None:
        """Make the next ``times`` calls of ``method`` fail.

        ``after_success=True`` fails only once the call has taken effect (a message posted, then HTTP 500),
        as when Slack times out after storing.

        ``status=429`` answers ``ratelimited`` with ``Retry-After`` (1 s unless
        given); ``status=500``/``503`` a server error; ``error`` alone an HTTP
        200 ``{"ok": false, "error": error}``. With neither, HTTP 500.
        """
        if status is None:
            status = 200 if error else 500
        if status == 429 and retry_after is None:
            retry_after = 1
        with self._state.cond:
            self._state.faults.append(Fault(method, status, error, retry_after, 0.0, times, after_success))

    def delay_next(self, method: str, seconds: float, *, times: int = 1) -> None:
        """Make the next ``times`` calls of ``method`` answer normally but ``seconds`` late."""
        with self._state.cond:
            self._state.faults.append(Fault(method, 200, None, None, seconds, times))

    def set_handler(self, method: str, handler: Handler) -> None:
        """Answer ``method`` with ``handler(state, params) -> dict`` (raise ``ApiError`` to fail)."""
        with self._state.cond:
            self._state.handlers[method] = handler

    # -- what the user sees --------------------------------------------------

    def messages(self, channel: str, thread_ts: str | None = None) -> list[dict[str, Any]]:
        """The conversation as its members see it, oldest first, edits applied.

        Without ``thread_ts``: the channel's top-level messages (as
        ``conversations.history``). With it: the thread's parent and replies
        (as ``conversations.replies``). Each message carries ``channel``.
        """
        found = self._state.replies(channel, thread_ts) if thread_ts else self._state.history(channel)
        return [{**m, "channel": channel} for m in found]

    def message(self, channel: str, ts: str) -> dict[str, Any] | None:
        """One stored message, or None if it does not exist (or was deleted)."""
        found = self._state.message(channel, ts)
        return {**found, "channel": channel} if found else None

    def ephemeral_messages(self, channel: str | None = None, *, user: str | None = None) -> list[dict[str, Any]]:
        """Ephemeral messages shown so far (``chat.postEphemeral`` and ephemeral ``respond()``)."""
        with self._state.cond:
            return [copy.deepcopy(m) for m in self._state.ephemeral
                    if channel in (None, m["channel"]) and user in (None, m["recipient"])]

    def views(self) -> list[dict[str, Any]]:
        """Views opened or pushed, in their latest state (a published Home tab: :meth:`home_view`)."""
        with self._state.cond:
            return copy.deepcopy(list(self._state.views.values()))

    def home_view(self, user: str | None = None) -> dict[str, Any] | None:
        """The Home tab the app last published for ``user`` (the default user when omitted), or None."""
        tabs = home_tabs(self._state)
        with self._state.cond:
            found = tabs.by_user.get(user or self.workspace.user.id)
            return copy.deepcopy(found) if found is not None else None

    def open_home(self, user: str | None = None, *, timeout: float = 5.0) -> str:
        """``user`` opens the app's Home tab: ``app_home_opened`` with ``tab="home"`` (and their current Home view,
        as Slack sends it); returns the envelope id."""
        return self.push(self.payloads.app_home_opened(tab="home", user=user, view=self.home_view(user)),
                         timeout=timeout)

    def view(self, view_id: str) -> dict[str, Any]:
        """One view by id."""
        with self._state.cond:
            return copy.deepcopy(self._state.views[view_id])

    def files(self) -> list[dict[str, Any]]:
        """Uploaded files: ``id``, ``name``, ``title``, ``content`` (bytes), ``channels``, ``completed``..."""
        with self._state.cond:
            return copy.deepcopy(list(self._state.files.values()))

    def thread_status(self, channel: str, thread_ts: str) -> str | None:
        """The status a thread shows now (``assistant.threads.setStatus``): ``""`` once cleared, by the app or as
        Slack clears it (the app replied in the thread, or two minutes passed); None if it never had one."""
        with self._state.cond:
            found = self._state.statuses.get((channel, thread_ts))
        if found is None:
            return None
        status, since = found
        return status if time.monotonic() - since < directory.STATUS_LIFETIME_S else ""

    def stream(self, channel: str, ts: str) -> dict[str, Any] | None:
        """The ``chat.startStream`` stream of message ``ts``: ``stopped``, ``appends``, ``recipient``; or None."""
        with self._state.cond:
            found = self._state.streams.get((channel, ts))
            return copy.deepcopy(found) if found is not None else None

    def end_streams(self) -> None:
        """Slack ends every open stream (as it does after about five minutes): later appends fail with
        ``message_not_in_streaming_state``."""
        with self._state.cond:
            for stream in self._state.streams.values():
                stream["started"] -= self._state.stream_expiry_s + 1

    def suggested_prompts(self, channel: str) -> dict[str, Any] | None:
        """The prompts the app's Messages tab shows in ``channel`` (``title``, ``prompts``), or None."""
        with self._state.cond:
            found = self._state.prompts.get(channel)
            return copy.deepcopy(found) if found is not None else None

    def reactions(self, channel: str, ts: str) -> list[str]:
        """The names of the bot's reactions on a message."""
        bot = self.workspace.bot_user_id
        message = self._state.message(channel, ts) or {}
        return [r["name"] for r in message.get("reactions") or [] if bot in r.get("users", [])]

    def add_user(self, user: User) -> None:
        """Make ``users.info`` know ``user``."""
        with self._state.cond:
            self._state.users[user.id] = user

    def set_usergroup(self, group_id: str, user_ids: list[str]) -> None:
        """Make ``usergroups.users.list`` return ``user_ids`` for ``group_id`` (replacing its members)."""
        with self._state.cond:
            self._state.usergroups[group_id] = list(user_ids)

    def leave_channel(self, channel: str) -> None:
        """Make the bot a non-member of ``channel``: its chat.postMessage/postEphemeral there then fail."""
        with self._state.cond:
            self._state.not_joined.add(channel)

    def dm_channel(self, user_id: str | None = None) -> str:
        """The DM channel id between the bot and a user (the default user when omitted)."""
        return dm_channel_id(user_id or self.workspace.user.id)

    @property
    def warnings(self) -> list[str]:
        """Protocol smells Slack would not report: double acks, bad threads, refused tickets, crashes."""
        with self._state.cond:
            return list(self._state.warnings)

    def wait_until(self, predicate: Callable[[], Any], *, timeout: float = 5.0, what: str = "a condition") -> Any:
        """Wait until ``predicate()`` (which may call this fake's readers) is truthy; returns its value.

        Re-checked whenever the fake records anything, and every 50 ms.
        """
        deadline = time.monotonic() + timeout
        with self._state.cond:
            while not (result := predicate()):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"fakeslack: timed out after {timeout:.1f}s waiting for {what}")
                # Also re-check every 50 ms: the predicate may read state the fake never records.
                self._state.cond.wait(min(remaining, 0.05))
        return result

    # -- bookkeeping for pushes --------------------------------------------

    def _remember(self, kind: str | None, payload: dict[str, Any]) -> None:
        if payload.get("trigger_id"):
            self._state.note_trigger(payload["trigger_id"])
        hooks.register(self._state, payload)
        event = payload.get("event") or {}
        if kind != "events_api" or event.get("type") not in ("message", "app_mention"):
            return
        channel, subtype = event.get("channel"), event.get("subtype")
        if subtype == "message_changed":
            self._state.replace_message(channel, event["message"]["ts"], event["message"])
        elif subtype == "message_deleted":
            self._state.delete_message(channel, event["deleted_ts"])
        elif subtype in _STORED_EVENT_SUBTYPES:
            stored = {k: v for k, v in event.items() if k not in ("channel", "channel_type", "event_ts")}
            self._state.add_message(channel, {**stored, "type": "message"})


def _session_open(session: Any) -> bool:
    """Whether a Socket Mode client's connection is still open (builtin ``Connection`` or websocket-client app)."""
    if hasattr(session, "is_active"):
        return session.is_active()
    return getattr(session, "sock", None) is not None

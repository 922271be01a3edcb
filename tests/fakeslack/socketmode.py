"""The Socket Mode half of the fake: a ``websockets`` sync server on 127.0.0.1.

A client connects to the URL ``apps.connections.open`` returned; the ticket in
it works once, as on Slack. The server greets each connection with a ``hello``
envelope, sends pushed envelopes to the newest open connection (or, with
``delivery="round_robin"``, to each open connection in turn, as Slack spreads
an app's events over its connections), and records every ack the app sends
back with its payload and the time since the push.
Tests can end connections three ways, each one Slack really uses:
:meth:`SocketModeServer.close_connections` (a close frame),
:meth:`~SocketModeServer.send_disconnect` (a ``disconnect`` envelope asking
the app to reconnect) and :meth:`~SocketModeServer.drop_connections` (the TCP
connection just dies).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import socket
import threading
import time
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import Server, ServerConnection, serve

from .records import Ack, Connection, Push
from .state import SlackState
from .workspace import new_envelope_id

__all__ = ["SocketModeServer", "DELIVERIES"]

DELIVERIES = ("newest", "round_robin")

logger = logging.getLogger("fakeslack.socket")


class SocketModeServer:
    """Serves Socket Mode WebSockets on 127.0.0.1 with an OS-chosen port."""

    def __init__(self, state: SlackState, *, delivery: str = "newest") -> None:
        if delivery not in DELIVERIES:
            raise ValueError(f"fakeslack: delivery must be one of {DELIVERIES}, not {delivery!r}")
        self._state = state
        self.delivery = delivery
        self._turns = itertools.count()
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._live: dict[int, ServerConnection] = {}  # guarded by state.cond
        self._ids = itertools.count(1)

    def start(self) -> str:
        """Start listening; returns the base URL (``ws://127.0.0.1:<port>``)."""
        self._server = serve(self._handle, "127.0.0.1", 0, process_request=self._check_ticket,
                             ping_interval=None, close_timeout=1, logger=logger)
        self._thread = threading.Thread(target=self._server.serve_forever, name="fakeslack-socket", daemon=True)
        self._thread.start()
        return f"ws://127.0.0.1:{self._server.socket.getsockname()[1]}"

    def stop(self) -> None:
        """Close every connection (1001 going away) and wait for the handler threads."""
        if self._server is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._server = None

    # -- connection lifecycle ----------------------------------------------

    def _check_ticket(self, connection: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        if url.path.rstrip("/") != "/link":
            return connection.respond(HTTPStatus.NOT_FOUND, "no such endpoint\n")
        ticket = parse_qs(url.query).get("ticket", [""])[0]
        if not self._state.redeem_ticket(ticket):
            self._state.warn(f"WebSocket refused: ticket {ticket!r} unknown or already used")
            return connection.respond(HTTPStatus.UNAUTHORIZED, "invalid or used ticket\n")
        connection.fakeslack_ticket = ticket  # type: ignore[attr-defined]
        return None

    def _handle(self, connection: ServerConnection) -> None:
        conn_id = next(self._ids)
        with self._state.cond:
            open_now = len(self._live) + 1
        connection.send(json.dumps({
            "type": "hello", "num_connections": open_now,
            "debug_info": {"host": "applink-fakeslack", "started": time.strftime("%Y-%m-%d %H:%M:%S.000"),
                           "build_number": 1, "approximate_connection_time": 18060},
            "connection_info": {"app_id": self._state.workspace.app_id}}))
        with self._state.cond:
            self._live[conn_id] = connection
            self._state.connections[conn_id] = Connection(conn_id, connection.fakeslack_ticket, time.monotonic())
            self._state.notify()
        try:
            for frame in connection:
                self._on_frame(conn_id, frame)
        except ConnectionClosed:
            pass  # the client went away without a close frame; recorded below like any close
        finally:
            with self._state.cond:
                self._live.pop(conn_id, None)
                closed = dataclasses.replace(self._state.connections[conn_id], closed_at=time.monotonic())
                self._state.connections[conn_id] = closed
                self._state.notify()

    def _on_frame(self, conn_id: int, frame: str | bytes) -> None:
        at = time.monotonic()
        try:
            message = json.loads(frame)
        except json.JSONDecodeError:
            self._state.warn(f"connection {conn_id} sent a frame that is not JSON: {frame!r:.200}")
            return
        envelope_id = message.get("envelope_id") if isinstance(message, dict) else None
        if not envelope_id:
            self._state.warn(f"connection {conn_id} sent a message without envelope_id: {message!r:.200}")
            return
        with self._state.cond:
            push = self._state.pushes.get(envelope_id)
            if push is None:
                self._state.warnings.append(f"ack for an envelope never pushed: {envelope_id}")
            elif any(a.envelope_id == envelope_id for a in self._state.acks):
                self._state.warnings.append(f"envelope acknowledged twice: {envelope_id}")
            latency = at - push.at if push else None
            self._state.acks.append(Ack(envelope_id, message.get("payload"), conn_id, at, latency))
            self._state.notify()

    # -- what tests drive --------------------------------------------------

    def push(self, envelope: dict[str, Any], *, timeout: float, connection_id: int | None = None) -> str:
        """Send ``envelope`` to one open connection, waiting up to ``timeout`` for one.

        Which one: ``connection_id`` when given (waiting for it to be open), else the newest, or the next in turn
        with ``delivery="round_robin"``.
        """
        envelope = {**envelope, "envelope_id": envelope.get("envelope_id") or new_envelope_id()}
        deadline = time.monotonic() + timeout
        while True:
            if connection_id is None:
                self._state.wait_for(lambda: self._live, max(deadline - time.monotonic(), 0.0),
                                     "an open Socket Mode connection to push to")
            else:
                self._state.wait_for(lambda: connection_id in self._live, max(deadline - time.monotonic(), 0.0),
                                     f"Socket Mode connection #{connection_id} to be open")
            with self._state.cond:
                conn_id = self._choose(connection_id)
                connection = self._live[conn_id]
                self._state.pushes[envelope["envelope_id"]] = Push(
                    envelope["envelope_id"], envelope, conn_id, time.monotonic())
            try:
                connection.send(json.dumps(envelope))
                return envelope["envelope_id"]
            except ConnectionClosed:  # lost a race with a reconnect: try the next connection
                with self._state.cond:
                    self._live.pop(conn_id, None)

    def _choose(self, connection_id: int | None) -> int:
        """The connection to push to (``state.cond`` held, at least one connection open)."""
        if connection_id is not None:
            return connection_id
        if self.delivery == "round_robin":
            live = sorted(self._live)
            return live[next(self._turns) % len(live)]
        return max(self._live)

    def _each_live(self) -> list[ServerConnection]:
        with self._state.cond:
            return list(self._live.values())

    def close_connections(self, *, code: int = 1001, reason: str = "") -> None:
        """Close every open connection with a close frame, as Slack does when it rotates servers."""
        for connection in self._each_live():
            connection.close(code, reason)

    def send_disconnect(self, *, reason: str = "refresh_requested") -> None:
        """Send Slack's ``disconnect`` envelope, which asks the client to reconnect elsewhere."""
        message = json.dumps({"type": "disconnect", "reason": reason,
                              "debug_info": {"host": "applink-fakeslack"}})
        for connection in self._each_live():
            try:
                connection.send(message)
            except ConnectionClosed:
                pass  # already gone: nothing to ask

    def drop_connections(self) -> None:
        """Cut every connection's TCP stream without a close frame (a network failure)."""
        for connection in self._each_live():
            try:
                connection.socket.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed

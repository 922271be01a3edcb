"""A ticket system on 127.0.0.1 for the tests: a stdlib HTTP server on a thread that records each request.

It answers from a script (``enqueue``) and otherwise opens a ticket, keeping the ``Idempotency-Key`` of each
one: a repeated key gets the ticket it already opened, never a second one (what Zendesk documents, and what a
webhook receiver is asked to do in docs/tickets.md).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

__all__ = ["Received", "Receiver"]


@dataclass
class Received:
    """One request as the receiver saw it."""

    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """The server; ``answer(key, number)`` shapes the JSON of a new ticket (the generic webhook's by default)."""

    answer: Callable[[str, int], dict[str, Any]] = lambda key, number: {
        "id": f"T-{number}", "url": f"https://tickets.example.com/T-{number}"}
    requests: list[Received] = field(default_factory=list)
    tickets: dict[str, dict[str, Any]] = field(default_factory=dict)  # idempotency key -> the answer it got
    script: deque = field(default_factory=deque)  # (status, delay before answering) for the next requests
    status: int = 201
    honours_key: bool = True  # False: like ServiceNow, every create opens a ticket whatever its Idempotency-Key
    lookup_status: int = 200  # the answer to a look-up (GET): 403 for a login without read access

    def enqueue(self, status: int, *, delay_s: float = 0.0) -> None:
        """Answer the next request with ``status`` (2xx: the ticket is opened first) after ``delay_s``."""
        self.script.append((status, delay_s))

    def start(self) -> "Receiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append(Received(self.path, dict(self.headers.items()), body))
                status, delay = receiver.script.popleft() if receiver.script else (receiver.status, 0.0)
                payload: Any = {"error": "unavailable"}
                if 200 <= status < 300:
                    key = self.headers.get("Idempotency-Key") or f"none-{len(receiver.requests)}"
                    if not receiver.honours_key and key in receiver.tickets:
                        key = f"{key}#{len(receiver.tickets) + 1}"
                    if key not in receiver.tickets:
                        receiver.tickets[key] = receiver.answer(key, len(receiver.tickets) + 1)
                    payload = receiver.tickets[key]
                time.sleep(delay)  # the ticket exists; the answer may come too late for the sender
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the sender gave up waiting
                    pass

            def do_GET(self) -> None:  # noqa: N802 - ServiceNow's Table API query by correlation_id
                receiver.requests.append(Received(self.path, dict(self.headers.items()), b""))
                query = parse_qs(urlsplit(self.path).query)
                if "jql" in query:  # Jira: text ~ "\"<key>\"", the key that ends the request's description
                    key = query["jql"][0].split('\\"')[1] if '\\"' in query["jql"][0] else ""
                    found = {"issues": [{"key": receiver.tickets[key]["issueKey"]}] if key in receiver.tickets else []}
                else:  # ServiceNow: sysparm_query=correlation_id=<key>
                    key = query.get("sysparm_query", [""])[0].removeprefix("correlation_id=")
                    found = {"result": [receiver.tickets[key]["result"]] if key in receiver.tickets else []}
                data = json.dumps(found if receiver.lookup_status == 200 else {"error": "denied"}).encode()
                self.send_response(receiver.lookup_status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, name="ticket-receiver", daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

"""Everything the fake knows, behind one lock, shared by the HTTP and WebSocket servers.

The Web API handlers and the Socket Mode server run on their own threads;
tests read from a third. All of them go through :class:`SlackState`, whose
condition variable also wakes the ``wait_for_*`` helpers when something is
recorded.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .records import Ack, Call, Connection, Push
from .workspace import User, Workspace

__all__ = ["ApiError", "Fault", "Handler", "SlackState"]

Handler = Callable[["SlackState", dict[str, Any]], dict[str, Any]]


class ApiError(Exception):
    """Raised by a method handler; becomes ``{"ok": false, "error": ...}`` with HTTP 200, as Slack does."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra

    @classmethod
    def invalid(cls, error: str, problems: list[str]) -> ApiError:
        """An error carrying Slack's per-field problem list (``invalid_blocks``, ``invalid_arguments``)."""
        return cls(error, errors=problems, response_metadata={"messages": [f"[ERROR] {p}" for p in problems]})

    def response(self) -> dict[str, Any]:
        """The JSON body Slack would send."""
        return {"ok": False, "error": self.error, **self.extra}


@dataclass
class Fault:
    """A programmed misbehaviour for the next ``remaining`` calls of ``method``."""

    method: str
    status: int
    error: str | None
    retry_after: int | None
    delay: float
    remaining: int
    after: bool = False  # do the work, then fail: the client cannot tell whether it happened


class SlackState:
    """Calls, envelopes, conversations, views, files and the knobs tests turn."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.http_url = ""  # set by FakeSlack once the servers listen
        self.ws_url = ""
        self.cond = threading.Condition(threading.RLock())
        self.calls: list[Call] = []
        self.pushes: dict[str, Push] = {}
        self.acks: list[Ack] = []
        self.connections: dict[int, Connection] = {}
        self.channels: dict[str, dict[str, dict[str, Any]]] = {}
        self.ephemeral: list[dict[str, Any]] = []
        self.views: dict[str, dict[str, Any]] = {}
        self.files: dict[str, dict[str, Any]] = {}
        self.users: dict[str, User] = {u.id: u for u in (workspace.user, workspace.bot_as_user())}
        self.statuses: dict[tuple[str, str], tuple[str, float]] = {}  # (channel, thread) -> (status, set at)
        self.prompts: dict[str, dict[str, Any]] = {}  # channel -> {"title", "prompts"} (setSuggestedPrompts)
        self.streams: dict[tuple[str, str], dict[str, Any]] = {}  # (channel, ts) -> chat.startStream's stream
        self.stream_expiry_s = 300.0  # Slack ends a stream after about five minutes
        self.scopes: frozenset[str] | None = None  # the bot token's scopes; None grants every method
        self.bot_events: frozenset[str] | None = None  # the app's event subscriptions; None takes every event
        self.usergroups: dict[str, list[str]] = {}
        self.triggers: dict[str, float] = {}
        self.exchanged_triggers: set[str] = set()
        self.tickets: dict[str, bool] = {}
        self.hooks: dict[str, dict[str, Any]] = {}
        self.not_joined: set[str] = set()  # channels the bot is not a member of
        self.faults: list[Fault] = []
        self.handlers: dict[str, Handler] = {}
        self.warnings: list[str] = []

    # -- bookkeeping -------------------------------------------------------

    def notify(self) -> None:
        """Wake every waiter; call with ``cond`` held."""
        self.cond.notify_all()

    def record_call(self, call: Call) -> None:
        with self.cond:
            self.calls.append(call)
            self.notify()

    def warn(self, message: str) -> None:
        """Note a protocol smell Slack would not report but a reviewer should see."""
        with self.cond:
            self.warnings.append(message)

    def take_fault(self, method: str) -> Fault | None:
        """The next programmed fault for ``method``, counting it down."""
        with self.cond:
            for fault in self.faults:
                if fault.method == method and fault.remaining > 0:
                    fault.remaining -= 1
                    return copy.copy(fault)
        return None

    def wait_for(self, predicate: Callable[[], Any], timeout: float, what: str) -> Any:
        """Block until ``predicate()`` is truthy and return it, or raise ``TimeoutError`` naming ``what``."""
        with self.cond:
            result = self.cond.wait_for(predicate, timeout=timeout)
        if not result:
            raise TimeoutError(f"fakeslack: timed out after {timeout:.1f}s waiting for {what}")
        return result

    # -- conversations -----------------------------------------------------

    def add_message(self, channel: str, message: dict[str, Any]) -> dict[str, Any]:
        """Store a message; a reply also updates its parent's thread summary, as Slack does."""
        with self.cond:
            stored = copy.deepcopy(message)
            stored.setdefault("type", "message")
            messages = self.channels.setdefault(channel, {})
            messages[stored["ts"]] = {**messages.get(stored["ts"], {}), **stored}
            thread_ts = stored.get("thread_ts")
            if thread_ts and thread_ts != stored["ts"]:
                parent = messages.get(thread_ts)
                if parent is None:
                    self.warnings.append(f"reply {stored['ts']} in {channel} names unknown thread_ts {thread_ts}")
                elif parent.get("thread_ts", thread_ts) != thread_ts:
                    self.warnings.append(f"reply {stored['ts']} in {channel} threads under a reply ({thread_ts})")
                else:
                    parent["thread_ts"] = thread_ts
                    parent["reply_count"] = parent.get("reply_count", 0) + 1
                    users = parent.setdefault("reply_users", [])
                    if stored.get("user") and stored["user"] not in users:
                        users.append(stored["user"])
                    parent["latest_reply"] = max(parent.get("latest_reply", stored["ts"]), stored["ts"])
            self.notify()
            return copy.deepcopy(messages[stored["ts"]])

    def reply_clears_status(self, channel: str, thread_ts: str | None) -> None:
        """The app replied in a thread: Slack removes the thread's ``assistant.threads.setStatus`` status."""
        with self.cond:
            if thread_ts and (channel, thread_ts) in self.statuses:
                self.statuses[(channel, thread_ts)] = ("", time.monotonic())
                self.notify()

    def message(self, channel: str, ts: str) -> dict[str, Any] | None:
        with self.cond:
            found = self.channels.get(channel, {}).get(ts)
            return copy.deepcopy(found) if found is not None else None

    def replace_message(self, channel: str, ts: str, message: dict[str, Any]) -> None:
        with self.cond:
            self.channels.setdefault(channel, {})[ts] = copy.deepcopy(message)
            self.notify()

    def delete_message(self, channel: str, ts: str) -> bool:
        with self.cond:
            removed = self.channels.get(channel, {}).pop(ts, None)
            self.notify()
            return removed is not None

    def history(self, channel: str) -> list[dict[str, Any]]:
        """Top-level messages, oldest first (thread replies only when broadcast)."""
        with self.cond:
            found = [m for m in self.channels.get(channel, {}).values()
                     if m.get("thread_ts", m["ts"]) == m["ts"] or m.get("subtype") == "thread_broadcast"]
            return copy.deepcopy(sorted(found, key=lambda m: m["ts"]))

    def replies(self, channel: str, thread_ts: str) -> list[dict[str, Any]]:
        """The parent then its replies, oldest first, as ``conversations.replies`` lists them."""
        with self.cond:
            found = [m for m in self.channels.get(channel, {}).values()
                     if m["ts"] == thread_ts or m.get("thread_ts") == thread_ts]
            return copy.deepcopy(sorted(found, key=lambda m: m["ts"]))

    # -- one-time tokens ---------------------------------------------------

    def issue_ticket(self, ticket: str) -> None:
        with self.cond:
            self.tickets[ticket] = False

    def redeem_ticket(self, ticket: str) -> bool:
        """True the first time a ticket from ``apps.connections.open`` is used; Slack's are single-use."""
        with self.cond:
            if self.tickets.get(ticket) is False:
                self.tickets[ticket] = True
                return True
            return False

    def note_trigger(self, trigger_id: str) -> None:
        with self.cond:
            self.triggers.setdefault(trigger_id, time.monotonic())

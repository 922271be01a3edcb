"""Who is who in the fake workspace, and how the fake mints Slack-shaped ids.

The ids the Web API answers with (``auth.test``) and the ids the payload
builders put into events must agree, or Bolt's self-event filter and
authorization middleware behave differently from production. Both read them
from one :class:`Workspace`.
"""

from __future__ import annotations

import secrets
import string
import threading
import time
import uuid
from dataclasses import dataclass, field

__all__ = ["User", "Workspace", "dm_channel_id", "new_envelope_id", "new_id", "new_trigger_id", "new_ts"]

_ALPHABET = string.ascii_uppercase + string.digits


@dataclass(frozen=True)
class User:
    """A workspace member, as ``users.info`` describes them."""

    id: str
    name: str
    real_name: str
    email: str
    tz: str = "Europe/London"
    tz_offset: int = 0
    is_bot: bool = False
    is_admin: bool = False
    deleted: bool = False


@dataclass(frozen=True)
class Workspace:
    """The team, the app and its bot user, and a default human user."""

    team_id: str = "T0FAKETEAM"
    team_domain: str = "acme-it"
    team_name: str = "Acme IT"
    app_id: str = "A0FAKEAPP1"
    bot_id: str = "B0FAKEBOT1"
    bot_user_id: str = "U0FAKEBOT1"
    bot_name: str = "itbot"
    user: User = field(default_factory=lambda: User(
        id="U0FAKEUSR1", name="alice", real_name="Alice Example", email="alice@example.com"))

    def bot_as_user(self) -> User:
        """The bot user as ``users.info`` shows it."""
        return User(id=self.bot_user_id, name=self.bot_name, real_name=self.bot_name,
                    email="", is_bot=True)


def dm_channel_id(user_id: str) -> str:
    """The id of the DM between the bot and ``user_id``: stable, so builders and the fake agree."""
    return "D" + user_id[1:]


_ts_lock = threading.Lock()
_last_ts_us = 0


def new_ts() -> str:
    """A message timestamp (``"1700000000.000100"``), unique and increasing in this process.

    One clock for user messages built by the payload helpers and bot messages
    posted through the Web API, so sorting by ``ts`` gives the order a user saw.
    """
    global _last_ts_us
    with _ts_lock:
        _last_ts_us = max(int(time.time() * 1_000_000), _last_ts_us + 1)
        seconds, micros = divmod(_last_ts_us, 1_000_000)
    return f"{seconds}.{micros:06d}"


def new_id(prefix: str, length: int = 10) -> str:
    """A Slack-style id such as ``V0A1B2C3D4`` (prefix plus upper-case alphanumerics)."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def new_envelope_id() -> str:
    """A Socket Mode envelope id (Slack uses UUIDs)."""
    return str(uuid.uuid4())


def new_trigger_id() -> str:
    """A trigger id in Slack's ``<digits>.<digits>.<hex>`` shape."""
    return f"{secrets.randbelow(10**13):013d}.{secrets.randbelow(10**12):012d}.{secrets.token_hex(16)}"

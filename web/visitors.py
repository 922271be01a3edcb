"""Who is asking: an anonymous visitor known only by their conversation's secret token, or a person a trusted
reverse proxy signed in (``ITBOT_WEB_TRUSTED_USER_HEADER``)."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from bot.conversation import WEB_TEAM, web_key

__all__ = ["Visitor", "new_token", "valid_token", "conversation_key", "visitor", "client_key"]

_TOKEN = re.compile(r"[A-Za-z0-9_-]{22}")
_PLAIN_USER = re.compile(r"[A-Za-z0-9._@+-]{1,28}")


def new_token() -> str:
    """A conversation's token: 128 random bits, the only proof that a conversation is the visitor's."""
    return secrets.token_urlsafe(16)


def valid_token(token: str) -> bool:
    return bool(_TOKEN.fullmatch(token))


@dataclass(frozen=True, slots=True)
class Visitor:
    """The user id stored with a web conversation, and the name a proxy vouched for (None: anonymous)."""

    user_id: str
    signed_in_as: str | None
    key: str  # the conversation key (see conversation_key)
    team_id: str = WEB_TEAM
    channel_id: str = WEB_TEAM


def conversation_key(token: str) -> str:
    """The stored key of the conversation ``token``: a hash of it, so neither the database nor the helpdesk
    channel (where the requester's id is shown) holds what would let someone read the conversation."""
    return web_key(hashlib.sha256(token.encode()).hexdigest()[:28])


def visitor(token: str, signed_in_as: str | None) -> Visitor:
    """The visitor of the conversation ``token``; a signed-in user keeps one id across their conversations.

    Stored ids are at most 32 characters: a long or unusual user name is stored as a hash of it.
    """
    key = conversation_key(token)
    if signed_in_as:
        name = signed_in_as.strip()
        ident = name if _PLAIN_USER.fullmatch(name) else hashlib.sha256(name.encode()).hexdigest()[:28]
        return Visitor(user_id=f"sso:{ident}", signed_in_as=name[:200], key=key)
    return Visitor(user_id=key, signed_in_as=None, key=key)


def client_key(host: str | None, signed_in_as: str | None) -> str:
    """Whom a rate limit counts: the signed-in user, else the client's address."""
    return f"user:{signed_in_as[:180]}" if signed_in_as else f"ip:{host or 'unknown'}"

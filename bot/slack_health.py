"""How the last Slack Web API call ended, for ``/readyz``.

A revoked bot token leaves the Socket Mode connection up (it runs on the app-level token) while every
answer fails: only the Web API's own answers tell. :class:`LastCall` sits first among the client's retry
handlers, the one hook slack_sdk runs after every response and every failed attempt, and Bolt copies that
list into the client it builds for each request, so listeners' calls are seen too.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Optional

from slack_sdk.http_retry.handler import RetryHandler

from bot.slack_startup import TOKEN_ERRORS

if TYPE_CHECKING:
    from slack_sdk import WebClient
    from slack_sdk.http_retry.request import HttpRequest
    from slack_sdk.http_retry.response import HttpResponse
    from slack_sdk.http_retry.state import RetryState

__all__ = ["LastCall", "last_call_of", "slack_api_ready"]


class LastCall(RetryHandler):
    """Remembers whether the last Web API call was refused for its token or could not reach Slack.

    Never asks for a retry. Any other outcome (``ok``, ``channel_not_found``, a 5xx...) counts as healthy:
    Slack answered and accepted the token.
    """

    def __init__(self) -> None:
        super().__init__(max_retry_count=0)
        self.failure: str | None = None
        self.rechecking = threading.Lock()  # one auth.test at a time from /readyz, however often it is probed

    def can_retry(self, *, state: "RetryState", request: "HttpRequest", response: Optional["HttpResponse"] = None,
                  error: Optional[Exception] = None) -> bool:
        self.failure = _failure(response, error)
        return False


def _failure(response: Optional["HttpResponse"], error: Optional[Exception]) -> str | None:
    """``token_revoked``, ``invalid_auth``..., ``unreachable: <error>``, or None for an answer from Slack."""
    if response is None:
        return f"unreachable: {type(error).__name__}" if error is not None else None
    body = response.body if isinstance(getattr(response, "body", None), dict) else {}
    code = body.get("error")
    return code if code in TOKEN_ERRORS else None


def last_call_of(client: "WebClient") -> LastCall | None:
    """The :class:`LastCall` among ``client``'s retry handlers, if it has one."""
    return next((handler for handler in client.retry_handlers if isinstance(handler, LastCall)), None)


def slack_api_ready(client: "WebClient") -> bool:
    """True unless the last Web API call failed for its token or the network, and still does.

    After a failure, ask Slack again (``auth.test``) so that readiness comes back with Slack, even when no
    question arrives to make a call.
    """
    last = last_call_of(client)
    if last is None or last.failure is None:
        return True
    if not last.rechecking.acquire(blocking=False):
        return False  # another probe is asking Slack (an unreachable Slack can take the client's 15 s timeouts)
    try:
        client.auth_test()
    except Exception:  # noqa: BLE001 - the handler has recorded why; not ready
        return False
    finally:
        last.rechecking.release()
    return last.failure is None

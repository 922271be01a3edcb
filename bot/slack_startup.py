"""What ``itbot run`` asks Slack before it loads anything: are the tokens good, is Slack reachable, which
channel ids do the channel settings name.

Each failure is one line that says what to fix (:class:`~bot.errors.ConfigError` for a token or a
channel, :class:`~bot.errors.SlackUnreachable` for the network), instead of the SDK's traceback. The
checks run on a client of their own that keeps quiet: the SDK logs every failed attempt, and the line
raised here says it once.
"""

from __future__ import annotations

import logging
import re
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import urlsplit

from bot.errors import ConfigError, ItbotError, SlackUnreachable
from bot.settings import CHANNEL_SETTINGS, TOKEN_SOURCES, env_name, proxy_address

if TYPE_CHECKING:
    from slack_sdk import WebClient

    from bot.settings import Settings

__all__ = ["check_slack", "channel_name", "resolve_channels", "slack_failure", "TOKEN_ERRORS"]

log = logging.getLogger(__name__)
PROBE_TIMEOUT_S = 10
CHANNEL_PAGE = 1000
_QUIET = logging.getLogger("bot.slack_startup.sdk")
_QUIET.disabled = True

# Slack's answers that mean "this token is no good", and what each means in words
TOKEN_ERRORS = {
    "invalid_auth": "Slack does not accept it",
    "not_authed": "Slack received no token",
    "token_revoked": "it was revoked",
    "token_expired": "it expired (token rotation is on: turn it off, as in manifest.yml, and reinstall)",
    "account_inactive": "the app was uninstalled or its workspace deactivated",
    "not_allowed_token_type": "it is the wrong kind of token",
}
_CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{2,}")
_CHANNEL_MENTION = re.compile(r"<#([CGD][A-Z0-9]{2,})(?:\|[^>]*)?>")


def check_slack(settings: "Settings", *, socket_mode: bool = True) -> "Settings":
    """Check both tokens with Slack and resolve channel names; return the settings with channel ids.

    Args:
        settings: Tokens, API URL, proxy and channel settings.
        socket_mode: Also check the app-level token (``itbot run``; ``itbot digest`` needs only the bot token).

    Raises:
        ConfigError: A token is refused, or a channel name matches no channel the bot can see.
        SlackUnreachable: Slack cannot be reached (network, firewall, proxy).
    """
    client = _probe_client(settings)
    with _one_line(settings, "SLACK_BOT_TOKEN"):
        client.auth_test()
    if socket_mode:
        assert settings.slack_app_token is not None
        with _one_line(settings, "SLACK_APP_TOKEN"):
            client.apps_connections_open(app_token=settings.slack_app_token.get_secret_value())
    with _one_line(settings, "SLACK_BOT_TOKEN"):
        return resolve_channels(settings, client.conversations_list)


def _probe_client(settings: "Settings") -> "WebClient":
    from slack_sdk import WebClient
    from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler

    assert settings.slack_bot_token is not None
    return WebClient(token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_base_url,
                     timeout=PROBE_TIMEOUT_S, proxy=settings.slack_proxy(), logger=_QUIET,
                     retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=5),
                                     ConnectionErrorRetryHandler(max_retry_count=1)])


@contextmanager
def _one_line(settings: "Settings", token_name: str) -> Iterator[None]:
    """Any failure of the calls inside, as one line (errors already meant for the user pass through)."""
    try:
        yield
    except ItbotError:
        raise
    except Exception as error:  # noqa: BLE001 - every way a call can fail becomes one line
        raise slack_failure(error, token_name=token_name, api_url=settings.slack_base_url,
                            proxy=settings.slack_proxy()) from None


def slack_failure(error: Exception, *, token_name: str, api_url: str, proxy: str | None) -> ItbotError:
    """The one-line error for a failed start-up call: a refused token, no route to Slack, or Slack's own error."""
    from slack_sdk.errors import SlackApiError

    if isinstance(error, SlackApiError):
        status = getattr(error.response, "status_code", 200)
        code = error.response.get("error") if isinstance(error.response.data, dict) else None
        if code in TOKEN_ERRORS:
            return ConfigError(f"{token_name}: {TOKEN_ERRORS[code]} ({code}): copy a current token from your Slack "
                               f"app's {TOKEN_SOURCES[token_name]} into .env")
        if status == 407:
            return SlackUnreachable(f"the proxy {_where(proxy)} asks for a login (HTTP 407): put it in HTTPS_PROXY "
                                    "as http://user:password@host:port")
        if code is None:
            return SlackUnreachable(f"{_host(api_url)} answered HTTP {status}, not Slack's API{_via(proxy)}: check "
                                    "SLACK_API_URL and the proxy or firewall in between")
        return ItbotError(f"Slack answered {code} at start-up: try again in a minute (https://slack-status.com)")
    return SlackUnreachable(f"cannot reach Slack at {_host(api_url)}{_via(proxy)}: {_reason(error)}; "
                            f"{_fix(error, proxy)}")


def _reason(error: BaseException) -> str:
    reason = getattr(error, "reason", error)
    text = getattr(reason, "strerror", None) or str(reason) or type(reason).__name__
    return text.splitlines()[0]


def _fix(error: BaseException, proxy: str | None) -> str:
    if isinstance(getattr(error, "reason", error), ssl.SSLCertVerificationError):
        return ("something between here and Slack replaces its certificate: point SSL_CERT_FILE at your "
                "organisation's CA bundle")
    if proxy:
        return "check HTTPS_PROXY and NO_PROXY (README 'Behind a proxy')"
    return ("check the network and firewall (outbound HTTPS to slack.com and wss-primary.slack.com), or set "
            "HTTPS_PROXY if this network needs a proxy (README 'Behind a proxy')")


def _host(url: str) -> str:
    parts = urlsplit(url)
    return parts.netloc or url


def _where(proxy: str | None) -> str:
    address = proxy_address(proxy) if proxy else None
    return f"{address[0]}:{address[1]}" if address else "(none)"


def _via(proxy: str | None) -> str:
    return f" through the proxy {_where(proxy)}" if proxy else ""


# -- channel names -----------------------------------------------------------------------------------------------


def channel_name(value: str) -> str | None:
    """The channel name ``value`` gives (``#helpdesk`` or ``helpdesk``); None when it is already an id.

    Slack's channel names are lower case, so an upper-case ``C…``/``G…`` word is an id; a pasted mention
    (``<#C0123|helpdesk>``) counts as its id.
    """
    value = value.strip()
    if _CHANNEL_ID.fullmatch(value) or _CHANNEL_MENTION.fullmatch(value):
        return None
    return value.removeprefix("#").strip().lower()


def _channel_id(value: str) -> str:
    mention = _CHANNEL_MENTION.fullmatch(value.strip())
    return mention.group(1) if mention else value.strip()


def resolve_channels(settings: "Settings", list_page: Callable[..., Any]) -> "Settings":
    """The settings with every channel setting given by name replaced by the channel's id.

    Args:
        settings: The settings; ids are kept as they are.
        list_page: ``conversations.list`` (keyword arguments: ``cursor``, ``limit``...), called only when a
            setting holds a name, and then page by page until every name is found or the list ends.

    Raises:
        ConfigError: A name matches no channel the bot can see, or the app lacks the scope to list them.
    """
    by_name = {field: name for field in CHANNEL_SETTINGS
               if (value := getattr(settings, field)) and (name := channel_name(value))}
    ids = {field: _channel_id(getattr(settings, field)) for field in CHANNEL_SETTINGS
           if getattr(settings, field) and field not in by_name}
    if by_name:
        found = _find_channels(set(by_name.values()), list_page, setting=env_name(next(iter(by_name))))
        for field, name in by_name.items():
            if name not in found:
                raise ConfigError(f"{env_name(field)}: no channel named #{name} that the bot can see: check the "
                                  "spelling, invite the bot if it is private, or give the channel id (channel "
                                  "details > About, C…)")
            ids[field] = found[name]
            log.info("%s: #%s is channel %s", env_name(field), name, found[name])
    return settings.model_copy(update=ids) if ids else settings


def _find_channels(names: set[str], list_page: Callable[..., Any], *, setting: str) -> dict[str, str]:
    """Page through ``conversations.list`` until every name in ``names`` is found: name -> id."""
    from slack_sdk.errors import SlackApiError

    found: dict[str, str] = {}
    cursor = ""
    while True:
        try:
            page = list_page(types="public_channel,private_channel", exclude_archived=True, limit=CHANNEL_PAGE,
                             **({"cursor": cursor} if cursor else {}))
        except SlackApiError as error:
            if error.response.get("error") != "missing_scope":
                raise
            raise ConfigError(f"{setting}: looking a channel up by name needs the channels:read and groups:read "
                              "scopes: add them (manifest.yml) and reinstall the app, or give the channel id "
                              "(channel details > About, C…)") from None
        for channel in page.get("channels") or []:
            if channel.get("name") in names:
                found[channel["name"]] = channel["id"]
        cursor = ((page.get("response_metadata") or {}).get("next_cursor") or "").strip()
        if not cursor or names <= found.keys():
            return found

"""One typed settings object, read once from the environment and ``.env``.

Every setting is documented with its default in ``.env.example``. Build it
with :func:`load_settings` (which turns validation errors into one-line
:class:`~bot.errors.ConfigError` messages) and pass it down; nothing else in
the code base reads environment variables.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.errors import ConfigError
from answers.org import OrgProfile

if TYPE_CHECKING:
    from answers.engine import EngineConfig
    from tickets import TicketConfig
    from web.config import WebConfig

__all__ = ["Settings", "RateLimit", "load_settings", "REPO_ROOT", "env_name", "proxy_address", "SLACK_API",
           "TOKEN_SOURCES", "CHANNEL_SETTINGS"]

REPO_ROOT = Path(__file__).resolve().parents[1]
_ORG = OrgProfile()
EMBEDDED_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"

_PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour|day)s?\s*$")


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``count`` questions per user in ``period_s`` seconds."""

    count: int
    period_s: int

    @classmethod
    def parse(cls, text: str) -> "RateLimit":
        match = _RATE.match(text.lower())
        if not match or int(match.group(1)) < 1:
            raise ValueError(f"{text!r} is not a rate such as '10/minute' (per second, minute, hour or day)")
        return cls(count=int(match.group(1)), period_s=_PERIODS[match.group(2)])

    def __str__(self) -> str:
        unit = next(name for name, seconds in _PERIODS.items() if seconds == self.period_s)
        return f"{self.count}/{unit}"


_UNPREFIXED = {"slack_bot_token": "SLACK_BOT_TOKEN", "slack_app_token": "SLACK_APP_TOKEN",
               "slack_api_url": "SLACK_API_URL", "https_proxy": "HTTPS_PROXY", "no_proxy": "NO_PROXY"}
SLACK_API = "https://slack.com/api/"
# Where each token comes from, for the messages that ask for it
TOKEN_SOURCES = {
    "SLACK_BOT_TOKEN": "OAuth & Permissions > Bot User OAuth Token (xoxb-…)",
    "SLACK_APP_TOKEN": "Basic Information > App-Level Tokens (xapp-…)",
}
# Settings that name a Slack channel: an id (C…), or a name that `itbot run` turns into one
CHANNEL_SETTINGS = ("escalation_channel", "digest_channel", "status_channel")


def proxy_address(url: str) -> tuple[str, int, tuple[str, str] | None] | None:
    """``http://user:pass@host:port`` as (host, port, (user, password) or None); None if it is not one.

    Both Slack clients take an HTTP proxy (``CONNECT`` for HTTPS and WebSockets); the port defaults to 80,
    as in urllib.
    """
    from urllib.parse import unquote, urlsplit

    try:
        parts = urlsplit(url)
        port = parts.port or 80
    except ValueError:
        return None
    if parts.scheme != "http" or not parts.hostname or parts.path not in ("", "/") or parts.query:
        return None
    auth = (unquote(parts.username), unquote(parts.password or "")) if parts.username else None
    return parts.hostname, port, auth


_HTTP_URL = re.compile(r"^https?://[^\s/]+")  # an http(s) URL that names a host (Slack API, model server)
_COLOUR = re.compile(r"#(?:[0-9a-fA-F]{3}){1,2}")
_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(?::\d{1,5})?")


def _hide_password(url: str) -> str:
    """``url`` with the password of its ``user:password@`` part replaced by ``***``, for messages and logs."""
    return re.sub(r"(://[^:/@\s]+:)[^@/\s]+@", r"\1***@", url)


def _unprefixed(field: str, *more: str) -> Any:
    return Field(default=None, validation_alias=AliasChoices(_UNPREFIXED[field], *more, field))


class Settings(BaseSettings):
    """Everything the bot can be configured with."""

    model_config = SettingsConfigDict(
        env_prefix="ITBOT_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        validate_default=True,
    )

    # Slack
    slack_bot_token: SecretStr | None = _unprefixed("slack_bot_token")
    slack_app_token: SecretStr | None = _unprefixed("slack_app_token")
    slack_api_url: str | None = _unprefixed("slack_api_url")

    # Network: the standard proxy variables, for the Web API and the Socket Mode connection alike
    https_proxy: str | None = _unprefixed("https_proxy", "HTTP_PROXY")
    no_proxy: str | None = _unprefixed("no_proxy")

    # Storage
    database_url: str = "sqlite:///itbot.db"
    retention_days: int = Field(default=90, ge=1)
    min_free_disk_mb: int = Field(default=100, ge=0)

    # Answer engine and model
    answer_mode: Literal["kb", "llm", "hybrid"] = "kb"
    model: str = EMBEDDED_MODEL
    adapter: str | None = None
    quantization: Literal["4bit", "8bit", "none"] = "none"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    generation_timeout_s: float = Field(default=30.0, gt=0)
    # How the local model decodes: onnx (ONNX Runtime, quantized, prefix caching), torch, or auto (onnx when installed)
    llm_runtime: Literal["auto", "torch", "onnx"] = "auto"
    # The ONNX export's weights: int8 (the fastest prompt pass), int8-head (its LM head in float32), int4 (smallest,
    # fastest decoding) or fp32
    onnx_precision: Literal["int8", "int8-head", "int4", "fp32"] = "int8"
    # An OpenAI-compatible model server (vLLM, TGI, Ollama, `transformers serve`) instead of the local model
    llm_url: str | None = None
    llm_model: str | None = None  # the served model's name; default: ITBOT_MODEL
    llm_api_key: SecretStr | None = None
    max_new_tokens: int = Field(default=256, ge=16, le=4096)
    kb_dir: Path = REPO_ROOT / "data" / "kb"
    cache_dir: Path = Path.home() / ".cache" / "itbot"

    # Helpdesk workflow
    escalation_channel: str | None = None
    digest_channel: str | None = None
    status_channel: str | None = None  # where known issues are announced when posted and cleared (optional)
    digest_cron: str = "0 2 * * *"
    digest_questions: int = Field(default=0, ge=0)
    timezone: str = "UTC"
    agent_user_ids: Annotated[tuple[str, ...], NoDecode] = ()
    agent_usergroup: str | None = None
    rate_limit: Annotated[RateLimit, NoDecode] = RateLimit(count=10, period_s=60)

    # Operations: /metrics, /healthz and /readyz on this port (0 turns the endpoint off)
    metrics_port: int = Field(default=9464, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"

    # Web chat and HTTP API (web/): `itbot web`, or inside `itbot run` when the port is set (0: off)
    web_port: int = Field(default=0, ge=0, le=65535)
    web_host: str = "127.0.0.1"
    web_org_name: str | None = None  # the page's title; default: ITBOT_HELPDESK_NAME
    web_primary_colour: str = "#1d4f91"
    web_accent_colour: str = "#0b7a3e"
    web_cors_origins: Annotated[tuple[str, ...], NoDecode] = ()  # none: browsers refuse other sites' scripts
    web_trusted_user_header: str | None = None  # e.g. X-Forwarded-User, set by an SSO reverse proxy; off by default
    web_rate_limit: Annotated[RateLimit, NoDecode] = RateLimit(count=10, period_s=60)  # questions per client
    web_request_limit: Annotated[RateLimit, NoDecode] = RateLimit(count=120, period_s=60)  # any API call per client
    web_max_body_bytes: int = Field(default=16_384, ge=1024, le=1_048_576)

    # Ticket hand-off (tickets/, docs/tickets.md): each escalation also becomes a ticket in the helpdesk's system.
    # ITBOT_TICKETS is declared after what it needs, so its check sees every other ticket setting.
    ticket_timeout_s: float = Field(default=10.0, gt=0, le=120)
    ticket_retry_s: float = Field(default=30.0, ge=0)  # the first retry's delay; doubled each time, an hour at most
    ticket_smtp_host: str | None = None
    ticket_smtp_port: int = Field(default=587, ge=1, le=65535)
    ticket_smtp_user: str | None = None
    ticket_smtp_password: SecretStr | None = None
    ticket_smtp_starttls: bool = True
    ticket_email_from: str | None = None
    ticket_email_to: str | None = None  # default: ITBOT_HELPDESK_EMAIL
    ticket_webhook_url: str | None = None
    ticket_webhook_secret: SecretStr | None = None
    ticket_webhook_id_field: str = "id"
    ticket_webhook_url_field: str = "url"
    ticket_base_url: str | None = None
    ticket_user: str | None = None
    ticket_api_token: SecretStr | None = None
    ticket_jira_service_desk_id: str | None = None
    ticket_jira_request_type_id: str | None = None
    tickets: Literal["none", "email", "webhook", "jira", "servicenow", "zendesk"] = "none"

    # Logging
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool = False

    # Organisation profile, quoted in answers
    helpdesk_name: str = _ORG.helpdesk_name
    portal_url: str = _ORG.portal_url
    helpdesk_phone: str = _ORG.helpdesk_phone
    helpdesk_email: str = _ORG.helpdesk_email
    hr_portal_url: str = _ORG.hr_portal_url
    password_min_length: int = Field(default=_ORG.password_min_length, ge=4, le=128)
    wifi_ssid: str = _ORG.wifi_ssid
    guest_wifi_ssid: str = _ORG.guest_wifi_ssid
    vpn_address: str = _ORG.vpn_address
    software_catalog: str = _ORG.software_catalog
    phishing_report_email: str = _ORG.phishing_report_email

    @field_validator("slack_bot_token", "slack_app_token", "adapter", "slack_api_url", "https_proxy", "no_proxy",
                     "escalation_channel", "digest_channel", "status_channel", "agent_usergroup", "llm_url", "llm_model",
                     "llm_api_key", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("ticket_smtp_host", "ticket_smtp_user", "ticket_smtp_password", "ticket_email_from",
                     "ticket_email_to", "ticket_webhook_url", "ticket_webhook_secret", "ticket_base_url", "ticket_user",
                     "ticket_api_token", "ticket_jira_service_desk_id", "ticket_jira_request_type_id", mode="before")
    @classmethod
    def _blank_ticket_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("ticket_webhook_url", "ticket_base_url")
    @classmethod
    def _ticket_url(cls, value: str | None) -> str | None:
        if value is not None and not _HTTP_URL.match(value.strip()):
            raise ValueError(f"{value!r} is not an http(s) URL such as 'https://acme.atlassian.net'")
        return value.strip().rstrip("/") if value else None

    @field_validator("tickets")
    @classmethod
    def _tickets_complete(cls, value: str, info: ValidationInfo) -> str:
        """Each ticket system's settings are all there (the others are declared before this one)."""
        data = info.data
        needs = {"email": ("ticket_smtp_host", "ticket_email_from"),
                 "webhook": ("ticket_webhook_url", "ticket_webhook_secret"),
                 "jira": ("ticket_base_url", "ticket_user", "ticket_api_token", "ticket_jira_service_desk_id",
                          "ticket_jira_request_type_id"),
                 "servicenow": ("ticket_base_url", "ticket_user", "ticket_api_token"),
                 "zendesk": ("ticket_base_url", "ticket_user", "ticket_api_token")}.get(value, ())
        missing = [env_name(name) for name in needs if data.get(name) is None and name in info.data]
        absent = [env_name(name) for name in needs if name not in info.data]  # invalid itself: its own message
        if missing and not absent:
            raise ValueError(f"{value} needs {', '.join(missing)} (see .env.example and docs/tickets.md), "
                             "or set ITBOT_TICKETS=none")
        secret = data.get("ticket_webhook_secret")
        if value == "webhook" and secret is not None and len(secret.get_secret_value()) < 16:
            raise ValueError("webhook needs an ITBOT_TICKET_WEBHOOK_SECRET of at least 16 characters "
                             "(e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`)")
        return value

    @field_validator("slack_bot_token")
    @classmethod
    def _bot_token_prefix(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith("xoxb-"):
            raise ValueError("must be a bot token starting with 'xoxb-' (Slack app > OAuth & Permissions)")
        return value

    @field_validator("slack_app_token")
    @classmethod
    def _app_token_prefix(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith("xapp-"):
            raise ValueError(
                "must be an app-level token starting with 'xapp-' "
                "(Slack app > Basic Information > App-Level Tokens, scope connections:write)"
            )
        return value

    @field_validator("llm_url")
    @classmethod
    def _llm_url(cls, value: str | None) -> str | None:
        if value is not None and not _HTTP_URL.match(value):
            raise ValueError("is not an http(s) URL such as 'http://gpu-1:8000/v1' (the OpenAI-compatible API base)")
        return value

    @field_validator("slack_api_url")
    @classmethod
    def _api_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not _HTTP_URL.match(value):
            raise ValueError(f"{value!r} is not an http(s) URL such as 'https://slack.com/api/'")
        return value if value.endswith("/") else value + "/"

    @field_validator("https_proxy")
    @classmethod
    def _proxy_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if "://" not in value:  # curl and requests take a bare host:port too
            value = "http://" + value
        if proxy_address(value) is None:
            raise ValueError(f"{_hide_password(value)!r} is not an HTTP proxy URL such as "
                             "'http://proxy.example.com:3128' (user:password@ before the host if it needs one)")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        if not re.match(r"^[a-z][a-z0-9+]*://", value.strip()):
            raise ValueError(
                f"{value!r} is not a database URL such as 'sqlite:///itbot.db' "
                "or 'postgresql+psycopg://user:pass@host/db'"
            )
        return value.strip()

    @field_validator("digest_cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(value)
        except ValueError as error:
            raise ValueError(
                f"{value!r} is not a cron expression with 5 fields "
                f"(minute hour day month weekday), e.g. '0 2 * * *' ({error})"
            ) from None
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone such as 'Europe/Berlin' or 'UTC'") from None
        return value

    @field_validator("agent_user_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        for user_id in value:
            if not re.fullmatch(r"[UW][A-Z0-9]{2,}", user_id):
                raise ValueError(f"{user_id!r} is not a Slack user id such as 'U012ABCDEF'")
        return tuple(value)

    @field_validator("agent_usergroup")
    @classmethod
    def _usergroup(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"S[A-Z0-9]{2,}", value.strip()):
            raise ValueError(f"{value!r} is not a Slack user group id such as 'S012ABCDEF' (not the @handle)")
        return value.strip() if value else None

    @field_validator("rate_limit", "web_rate_limit", "web_request_limit", mode="before")
    @classmethod
    def _rate(cls, value: Any) -> Any:
        return RateLimit.parse(value) if isinstance(value, str) else value

    @field_validator("web_org_name", "web_trusted_user_header", mode="before")
    @classmethod
    def _blank_web_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("web_primary_colour", "web_accent_colour")
    @classmethod
    def _colour(cls, value: str) -> str:
        if not _COLOUR.fullmatch(value.strip()):
            raise ValueError(f"{value!r} is not a colour such as '#1d4f91' (# and 3 or 6 hexadecimal digits)")
        return value.strip()

    @field_validator("web_cors_origins", mode="before")
    @classmethod
    def _origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        for origin in value:
            if not _ORIGIN.fullmatch(origin):
                raise ValueError(f"{origin!r} is not a web origin such as 'https://intranet.example.com' "
                                 "(scheme and host, an optional port, no path; comma-separated)")
        return tuple(value)

    @field_validator("web_trusted_user_header")
    @classmethod
    def _header(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9-]{1,64}", value.strip()):
            raise ValueError(f"{value!r} is not an HTTP header name such as 'X-Forwarded-User'")
        return value.strip() if value else None

    # Views handed to the packages that need them -------------------------------

    def org_profile(self) -> OrgProfile:
        """The organisation profile the answer engine fills articles with."""
        return OrgProfile(**{name: getattr(self, name) for name in OrgProfile.__dataclass_fields__})

    def engine_config(self) -> "EngineConfig":
        """What the answer engine needs."""
        from data import SPLITS_DIR
        from answers.engine import EngineConfig

        return EngineConfig(
            kb_dir=self.kb_dir,
            train_files=(SPLITS_DIR / "train.jsonl", SPLITS_DIR / "validation.jsonl"),
            cache_dir=self.cache_dir,
            org=self.org_profile(),
            answer_mode=self.answer_mode,
        )

    def web_config(self) -> "WebConfig":
        """What the web chat needs."""
        from web.config import WebConfig

        return WebConfig(
            org_name=self.web_org_name or self.helpdesk_name.removeprefix("the "),
            primary_colour=self.web_primary_colour, accent_colour=self.web_accent_colour,
            ask_limit=self.web_rate_limit, request_limit=self.web_request_limit,
            host=self.web_host, port=self.web_port, cors_origins=self.web_cors_origins,
            trusted_user_header=self.web_trusted_user_header, max_body_bytes=self.web_max_body_bytes,
            escalation_channel=self.escalation_channel,
        )

    def ticket_config(self) -> "TicketConfig":
        """What the ticket hand-off needs (``ITBOT_TICKETS`` and the settings of the system it names)."""
        from tickets import PresetConfig, TicketConfig

        preset = None
        if self.tickets in ("jira", "servicenow", "zendesk"):
            assert self.ticket_base_url and self.ticket_user and self.ticket_api_token
            preset = PresetConfig(base_url=self.ticket_base_url, user=self.ticket_user, token=self.ticket_api_token,
                                  service_desk_id=self.ticket_jira_service_desk_id,
                                  request_type_id=self.ticket_jira_request_type_id, timeout_s=self.ticket_timeout_s)
        return TicketConfig(
            kind=self.tickets, timeout_s=self.ticket_timeout_s, smtp_host=self.ticket_smtp_host,
            smtp_port=self.ticket_smtp_port, smtp_user=self.ticket_smtp_user, smtp_password=self.ticket_smtp_password,
            smtp_starttls=self.ticket_smtp_starttls, email_from=self.ticket_email_from or "itbot@localhost",
            email_to=self.ticket_email_to or self.helpdesk_email, webhook_url=self.ticket_webhook_url,
            webhook_secret=self.ticket_webhook_secret, webhook_id_field=self.ticket_webhook_id_field,
            webhook_url_field=self.ticket_webhook_url_field, preset=preset)

    @property
    def slack_configured(self) -> bool:
        """True when both Slack tokens are set."""
        return self.slack_bot_token is not None and self.slack_app_token is not None

    @property
    def slack_base_url(self) -> str:
        """The Web API base URL: ``SLACK_API_URL``, or Slack's."""
        return self.slack_api_url or SLACK_API

    def slack_proxy(self) -> str | None:
        """The proxy both Slack clients go through: ``HTTPS_PROXY`` unless ``NO_PROXY`` lists Slack's host.

        Read here, once, and handed to both clients, so the Web API and the Socket Mode connection cannot
        disagree (left to themselves, slack_sdk falls back to ``HTTP_PROXY`` and websocket-client does not,
        and neither reads ``.env``).
        """
        from urllib.parse import urlsplit
        from urllib.request import proxy_bypass_environment

        if self.https_proxy is None:
            return None
        host = urlsplit(self.slack_base_url).hostname or ""
        if self.no_proxy and proxy_bypass_environment(host, {"no": self.no_proxy}):
            return None
        return self.https_proxy

    def secrets(self) -> list[str]:
        """Configured secret values, so logging can mask them wherever they appear."""
        found = [s.get_secret_value() for s in (self.slack_bot_token, self.slack_app_token, self.ticket_smtp_password,
                                                 self.ticket_webhook_secret, self.ticket_api_token) if s]
        for url in (self.database_url, self.https_proxy or ""):
            password = re.search(r"://[^:/@]+:([^@]+)@", url)
            if password:
                found.append(password.group(1))
        return found

    def require_slack(self) -> None:
        """Raise :class:`ConfigError` unless both Slack tokens are configured."""
        for name, value in (("SLACK_BOT_TOKEN", self.slack_bot_token), ("SLACK_APP_TOKEN", self.slack_app_token)):
            if value is None:
                raise ConfigError(f"{name} is not set: copy it from your Slack app's {TOKEN_SOURCES[name]} into .env")


def env_name(field: str) -> str:
    """The environment variable that sets ``field``."""
    if field in _UNPREFIXED.values():
        return field
    return _UNPREFIXED.get(field, f"ITBOT_{field.upper()}")


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment and ``.env``; raise one clear :class:`ConfigError`.

    Args:
        **overrides: Values that win over the environment (used by tests and the CLI).
    """
    try:
        return Settings(**overrides)
    except ValidationError as error:
        first = error.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "settings"
        message = first["msg"].removeprefix("Value error, ")
        raise ConfigError(f"{env_name(field)}: {message}") from None

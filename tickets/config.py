"""Which ticket system escalations go to, and :func:`build_sink`, the one factory of integrations."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import SecretStr

from tickets.mail import EmailSink
from tickets.presets import PRESETS, PresetConfig, preset_sink
from tickets.ticket import TicketSink
from tickets.webhook import WebhookSink, field_reference

__all__ = ["TicketConfig", "build_sink", "KINDS"]

KINDS = ("none", "email", "webhook", *PRESETS)


@dataclass(frozen=True, slots=True)
class TicketConfig:
    """Everything an integration may need (``bot.settings.Settings.ticket_config`` fills it)."""

    kind: str = "none"  # none | email | webhook | jira | servicenow | zendesk
    timeout_s: float = 10.0
    # email
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_user: str | None = None
    smtp_password: SecretStr | None = field(default=None, repr=False)
    smtp_starttls: bool = True
    email_from: str = "itbot@localhost"
    email_to: str | None = None
    # webhook
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = field(default=None, repr=False)
    webhook_id_field: str = "id"
    webhook_url_field: str = "url"
    # presets
    preset: PresetConfig | None = field(default=None, repr=False)


def build_sink(config: TicketConfig) -> TicketSink | None:
    """The integration ``config`` names; None when tickets are off. Settings validation made it complete."""
    if config.kind == "none":
        return None
    if config.kind == "email":
        assert config.smtp_host and config.email_to
        return EmailSink(host=config.smtp_host, port=config.smtp_port, user=config.smtp_user,
                         password=config.smtp_password, starttls=config.smtp_starttls, sender=config.email_from,
                         to=config.email_to, timeout_s=config.timeout_s)
    if config.kind == "webhook":
        assert config.webhook_url
        return WebhookSink(url=config.webhook_url, secret=config.webhook_secret, timeout_s=config.timeout_s,
                           reference=field_reference(config.webhook_id_field, config.webhook_url_field or None))
    assert config.preset is not None
    return preset_sink(config.kind, config.preset)

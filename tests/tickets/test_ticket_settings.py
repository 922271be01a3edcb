"""ITBOT_TICKETS: each ticket system's settings checked at start with a line that says what to set."""

from __future__ import annotations

import pytest

from bot.errors import ConfigError
from bot.settings import Settings, load_settings
from tickets import build_sink
from tickets.mail import EmailSink
from tickets.webhook import WebhookSink

SECRET = "whsec-unique-0123456789abcdef"


@pytest.mark.parametrize(("values", "expected"), [
    ({"ITBOT_TICKETS": "webhook"},
     "ITBOT_TICKETS: webhook needs ITBOT_TICKET_WEBHOOK_URL, ITBOT_TICKET_WEBHOOK_SECRET"),
    ({"ITBOT_TICKETS": "webhook", "ITBOT_TICKET_WEBHOOK_URL": "https://hooks.example.com/itbot",
      "ITBOT_TICKET_WEBHOOK_SECRET": "short"}, "at least 16 characters"),
    ({"ITBOT_TICKETS": "email"}, "ITBOT_TICKETS: email needs ITBOT_TICKET_SMTP_HOST, ITBOT_TICKET_EMAIL_FROM"),
    ({"ITBOT_TICKETS": "jira", "ITBOT_TICKET_BASE_URL": "https://acme.atlassian.net", "ITBOT_TICKET_USER": "a@b.c",
      "ITBOT_TICKET_API_TOKEN": "t"},
     "jira needs ITBOT_TICKET_JIRA_SERVICE_DESK_ID, ITBOT_TICKET_JIRA_REQUEST_TYPE_ID"),
    ({"ITBOT_TICKETS": "zendesk", "ITBOT_TICKET_BASE_URL": "acme.zendesk.com"},
     "ITBOT_TICKET_BASE_URL: 'acme.zendesk.com' is not an http(s) URL"),
    ({"ITBOT_TICKETS": "freshdesk"}, "ITBOT_TICKETS: Input should be 'none', 'email', 'webhook', 'jira'"),
])
def test_an_incomplete_ticket_setup_is_one_line_saying_what_to_set(monkeypatch, values, expected):
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as error:
        load_settings()
    assert expected in str(error.value)


def test_each_kind_builds_its_integration_and_its_secrets_are_masked():
    assert build_sink(Settings(_env_file=None).ticket_config()) is None
    webhook = Settings(_env_file=None, tickets="webhook", ticket_webhook_url="https://hooks.example.com/itbot/",
                       ticket_webhook_secret=SECRET, ticket_webhook_id_field="result.number")
    sink = build_sink(webhook.ticket_config())
    assert isinstance(sink, WebhookSink) and sink.url == "https://hooks.example.com/itbot"
    assert SECRET in webhook.secrets() and SECRET not in repr(webhook) and SECRET not in repr(sink)
    mail = Settings(_env_file=None, tickets="email", ticket_smtp_host="smtp.example.com", ticket_smtp_password="pw-1",
                    ticket_email_from="itbot@example.com", helpdesk_email="desk@example.com")
    sink = build_sink(mail.ticket_config())
    assert isinstance(sink, EmailSink) and sink.to == "desk@example.com" and "pw-1" in mail.secrets()
    jira = Settings(_env_file=None, tickets="jira", ticket_base_url="https://acme.atlassian.net",
                    ticket_user="a@example.com", ticket_api_token="tok-123", ticket_jira_service_desk_id="1",
                    ticket_jira_request_type_id="25")
    sink = build_sink(jira.ticket_config())
    assert sink.url == "https://acme.atlassian.net/rest/servicedeskapi/request" and sink.name == "jira"
    assert "tok-123" in jira.secrets() and "tok-123" not in repr(sink)

"""Tickets by email, against a real SMTP server (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

import email
from datetime import timedelta
from email import policy

from storage.models import Escalation
from storage.types import utcnow
from tests.tickets.conftest import PASSWORD, free_port, open_escalation
from tickets import Backoff, deliver_due
from tickets.mail import EmailSink

SMTP_PASSWORD = "smtp-Pa55word-unique"


def _sink(port: int, **options) -> EmailSink:
    return EmailSink(host="127.0.0.1", port=port, starttls=False, sender="itbot@example.com",
                     to="helpdesk@example.com", timeout_s=5, **options)


def test_an_escalation_is_emailed_to_the_desk_with_its_redacted_transcript(sessions, smtp_server):
    port, mailbox = smtp_server
    escalation_id = open_escalation(sessions)
    (outcome,) = deliver_due(sessions, _sink(port))
    assert outcome.state.status == "created" and outcome.state.url is None
    (sender, recipients, raw), = mailbox.mails
    assert (sender, recipients) == ("itbot@example.com", ["helpdesk@example.com"])
    message = email.message_from_bytes(raw, policy=policy.default)
    assert message["Subject"].startswith(f"[itbot] Escalation #{escalation_id}: my vpn refuses my password")
    body = message.get_content()
    assert "User: my vpn refuses my password" in body and "Bot: Try reconnecting." in body
    assert "I have a demo at 3pm" in body and "Urgency: high" in body
    assert PASSWORD not in raw.decode()  # the transcript is the stored, redacted conversation
    # the ticket's id is the Message-ID, derived from the idempotency key: a resend carries the same one
    assert message["Message-ID"] == f"<{outcome.state.id}>"
    assert outcome.state.id.startswith(f"itbot-escalation-{escalation_id}-") and outcome.state.id.endswith(
        "@example.com")
    with sessions.begin() as session:
        assert session.get(Escalation, escalation_id).ticket_status == "created"
    assert deliver_due(sessions, _sink(port)) == []  # sent once


def test_a_desk_mailbox_that_is_down_is_retried_until_it_takes_the_mail(sessions, smtp_server):
    port, mailbox = smtp_server
    open_escalation(sessions)
    (first,) = deliver_due(sessions, _sink(free_port()), backoff=Backoff(first_s=60))
    assert first.state.status == "pending" and first.state.attempts == 1
    assert first.state.error == "SMTP unavailable (ConnectionRefusedError)"
    assert deliver_due(sessions, _sink(port)) == []  # not due before its next attempt
    (second,) = deliver_due(sessions, _sink(port), now=lambda: utcnow() + timedelta(seconds=61))
    assert second.state.status == "created" and second.state.attempts == 2
    assert len(mailbox.mails) == 1


def test_an_smtp_login_works_and_its_password_never_reaches_logs_or_the_database(sessions, caplog, tmp_path):
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    from tests.tickets.conftest import Mailbox

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == b"itbot" and auth_data.password == SMTP_PASSWORD.encode()
        return AuthResult(success=ok, handled=False)

    from pydantic import SecretStr

    mailbox, port = Mailbox(), free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, authenticator=authenticate,
                            auth_require_tls=False)
    controller.start()
    try:
        caplog.set_level("DEBUG")
        open_escalation(sessions)
        open_escalation(sessions, key="1700000000.000200")
        good = _sink(port, user="itbot", password=SecretStr(SMTP_PASSWORD))
        bad = _sink(port, user="itbot", password=SecretStr("wrong-" + SMTP_PASSWORD))
        (first,) = deliver_due(sessions, good, only=1)
        (second,) = deliver_due(sessions, bad, only=2)
    finally:
        controller.stop()
    assert first.state.status == "created" and len(mailbox.mails) == 1
    # a refused login is refused for good: agents see why, and nobody is flooded with retries
    assert second.state.status == "failed" and second.state.error == "SMTP login refused (535)"
    assert SMTP_PASSWORD not in repr(good) and SMTP_PASSWORD not in caplog.text
    assert SMTP_PASSWORD not in (tmp_path / "itbot.db").read_bytes().decode("utf-8", "replace")


def test_starttls_asked_of_a_server_without_it_fails_with_a_fix(sessions, smtp_server):
    port, _mailbox = smtp_server
    open_escalation(sessions)
    (outcome,) = deliver_due(sessions, EmailSink(host="127.0.0.1", port=port, starttls=True, sender="a@example.com",
                                                 to="b@example.com", timeout_s=5))
    assert outcome.state.status == "failed"
    assert "ITBOT_TICKET_SMTP_STARTTLS=false" in outcome.state.error

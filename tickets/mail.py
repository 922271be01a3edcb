"""Tickets by email: one message to the helpdesk's mailbox, which most ticket systems turn into a ticket.

SMTP has no idempotency key: the Message-ID is derived from the ticket's key, so a message sent twice (the
server took it but the connection dropped before it said so) carries the same Message-ID both times, which
mail-to-ticket systems use to thread or drop the copy.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate

from pydantic import SecretStr

from tickets.errors import TicketRejected, TicketRetry
from tickets.ticket import Ticket, TicketRef

__all__ = ["EmailSink", "message_for"]


def message_for(ticket: Ticket, *, sender: str, to: str, domain: str = "itbot.local") -> EmailMessage:
    """The email of ``ticket``: subject, transcript as a plain-text body, and a Message-ID from its key."""
    message = EmailMessage()
    message["Subject"] = ticket.subject
    message["From"] = sender
    message["To"] = to
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = f"<{ticket.idempotency_key}@{domain}>"
    message["X-Itbot-Escalation"] = str(ticket.escalation_id)
    message["X-Itbot-Urgency"] = ticket.urgency
    message.set_content(f"Urgency: {ticket.urgency}\nRequester: {ticket.requester}\n\n{ticket.transcript}\n")
    return message


@dataclass
class EmailSink:
    """Send each ticket as an email through an SMTP server (STARTTLS and a login when configured)."""

    host: str
    to: str
    sender: str
    port: int = 587
    user: str | None = None
    password: SecretStr | None = field(default=None, repr=False)
    starttls: bool = True
    timeout_s: float = 10.0
    name: str = "email"

    def open(self, ticket: Ticket) -> TicketRef:
        message = message_for(ticket, sender=self.sender, to=self.to,
                              domain=self.sender.rpartition("@")[2] or "itbot.local")
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.user:
                    smtp.login(self.user, self.password.get_secret_value() if self.password else "")
                refused = smtp.send_message(message)
        except smtplib.SMTPAuthenticationError as error:
            raise TicketRejected(f"SMTP login refused ({error.smtp_code})") from None
        except smtplib.SMTPResponseException as error:  # 4xx: try later; 5xx: the server will not take it
            kind = TicketRetry if 400 <= error.smtp_code < 500 else TicketRejected
            raise kind(f"SMTP {error.smtp_code}") from None
        except smtplib.SMTPRecipientsRefused:
            raise TicketRejected(f"SMTP refused the recipient {self.to}") from None
        except smtplib.SMTPNotSupportedError:
            raise TicketRejected("SMTP server does not offer STARTTLS (ITBOT_TICKET_SMTP_STARTTLS=false?)") from None
        except (OSError, smtplib.SMTPException) as error:  # refused connection, timeout, dropped line
            raise TicketRetry(f"SMTP unavailable ({type(error).__name__})") from None
        if refused:
            raise TicketRejected(f"SMTP refused the recipient {self.to}")
        return TicketRef(id=str(message["Message-ID"]).strip("<>"))  # what the desk can search its mailbox for

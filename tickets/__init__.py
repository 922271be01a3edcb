"""Ticket hand-off: every escalation becomes a ticket in the helpdesk's ticket system, with its redacted
transcript, and the ticket's id and link come back to the escalation.

Knows storage, not Slack or HTTP servers (``bot/helpdesk.py`` shows the outcome in Slack). One interface,
:class:`TicketSink`, with an integration per module: ``mail`` (SMTP), ``webhook`` (signed JSON) and
``presets`` (the webhook shaped for Jira Service Management, ServiceNow and Zendesk); ``outbox`` delivers
durably, with retries. Setup for each system: docs/tickets.md.
"""

from tickets.config import KINDS, TicketConfig, build_sink
from tickets.errors import TicketError, TicketRejected, TicketRetry
from tickets.outbox import Backoff, Delivered, TicketState, deliver_due, idempotency_key, ticket_for
from tickets.presets import PresetConfig
from tickets.ticket import Ticket, TicketRef, TicketSink

__all__ = ["KINDS", "TicketConfig", "build_sink", "TicketError", "TicketRejected", "TicketRetry", "Backoff",
           "Delivered", "TicketState", "deliver_due", "idempotency_key", "ticket_for", "PresetConfig", "Ticket",
           "TicketRef", "TicketSink"]

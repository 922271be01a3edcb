"""``itbot web`` on its own: the web chat, and the delivery of due tickets that ``itbot run``'s scheduler does.

Without it, a web chat escalation waited for an ``itbot run`` on the same database to send its ticket. Each
ticket is leased in the database before it is sent (``tickets.outbox``), so an ``itbot web`` and an ``itbot run``
(or several of either) sharing a database never send one twice.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from bot.scheduler import TICKETS_EVERY_S, add_ticket_job
from web.app import create_app
from web.config import WebContext
from web.server import WebServer

if TYPE_CHECKING:
    from apscheduler.schedulers.background import BackgroundScheduler
    from slack_sdk import WebClient

    from bot.services import Services

__all__ = ["StandaloneWeb", "ticket_scheduler"]

log = logging.getLogger(__name__)


def ticket_scheduler(services: "Services", client: "WebClient | None", *,
                     every_s: float = TICKETS_EVERY_S) -> "BackgroundScheduler | None":
    """A scheduler (not started) sending due tickets at start, then every ``every_s``; None when tickets are off.

    The same job as ``itbot run``'s (``bot.helpdesk.deliver_tickets``); with a Slack client each outcome is also
    shown on the helpdesk post, as there.
    """
    if services.settings.tickets == "none":
        return None
    from apscheduler.schedulers.background import BackgroundScheduler

    scheduler = BackgroundScheduler(timezone=services.settings.timezone,
                                    job_defaults={"coalesce": True, "max_instances": 1})
    add_ticket_job(scheduler, services, client, every_s=every_s)
    return scheduler


class StandaloneWeb:
    """The web chat over ``services`` on ``host:port``, with ticket delivery when ``ITBOT_TICKETS`` is set.

    Args:
        services: The engine, database and settings (``bot.app.build_services``).
        client: The Slack client that posts escalations to the helpdesk channel; None: stored only.
        host: The address to listen on.
        port: The port (0: any free one, for tests).
        tickets_every_s: How often due tickets are looked for (tests shorten it).
    """

    def __init__(self, services: "Services", *, client: "WebClient | None", host: str, port: int,
                 tickets_every_s: float = TICKETS_EVERY_S) -> None:
        self.services = services
        context = WebContext(config=services.settings.web_config(), engine=services.engine,
                             sessions=services.sessions, slack=client)
        self.server = WebServer(create_app(context), host=host, port=port)
        self.tickets = ticket_scheduler(services, client, every_s=tickets_every_s)
        self._tickets_every_s = tickets_every_s

    def start(self) -> "StandaloneWeb":
        """Serve on a thread and start sending tickets; return once it listens."""
        self.server.start()
        self._start_tickets()
        return self

    def run(self) -> None:
        """Serve in the foreground until SIGINT/SIGTERM, sending tickets meanwhile; stop both on the way out."""
        self._start_tickets()
        try:
            self.server.run()
        finally:
            self._stop_background()

    def stop(self) -> None:
        """Stop serving (the requests in flight finish) and stop sending tickets."""
        self.server.stop()
        self._stop_background()

    def _start_tickets(self) -> None:
        if self.tickets is not None:
            self.tickets.start()
            log.info("sending due %s tickets every %g s", self.services.settings.tickets, self._tickets_every_s)

    def _stop_background(self) -> None:
        if self.tickets is not None and self.tickets.running:
            self.tickets.shutdown(wait=False)  # as itbot run: an attempt in flight finishes, or its lease expires
        self.services.worker.shutdown(wait=True)

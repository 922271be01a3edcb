"""Scheduled jobs inside ``itbot run``: the nightly evaluation and digest, and the daily retention purge.

Jobs coalesce and have a misfire grace period, so a laptop that slept or a
restart neither skips nor doubles a run; a claim row in the database makes
exactly one of several bot instances run each day's job.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from bot.nightly import DIGEST_JOB, job_holder, run_nightly
from storage import repository as repo

if TYPE_CHECKING:
    from apscheduler.schedulers.background import BackgroundScheduler
    from slack_sdk import WebClient
    from sqlalchemy.orm import Session, sessionmaker

    from bot.services import Services

__all__ = ["run_retention", "build_scheduler", "add_ticket_job", "RETENTION_CRON", "MISFIRE_GRACE_S", "RECOVER_EVERY_S",
           "TICKETS_EVERY_S"]

log = logging.getLogger(__name__)
RETENTION_CRON = "30 3 * * *"
MISFIRE_GRACE_S = 6 * 3600  # a job missed while the machine slept still runs if it wakes within 6 hours
RECOVER_EVERY_S = 15  # how often unanswered questions of stopped instances are looked for (and once at start)
TICKETS_EVERY_S = 15  # how often due tickets are sent (once at start: those a stopped instance left pending)


def run_retention(sessions: "sessionmaker[Session]", *, retention_days: int, today: str | None = None) -> bool:
    """Purge conversations older than the retention period, once per day across all instances.

    Returns:
        True when this instance ran the purge, False when another one already had it today.
    """
    period = today or datetime.now(timezone.utc).strftime("%Y-%m-%d")
    with sessions.begin() as session:
        if not repo.acquire_job_lock(session, name="retention", period_key=period, holder=job_holder()):
            return False
    cutoff = datetime.now(timezone.utc) - timedelta(days=retention_days)
    with sessions.begin() as session:
        counts = repo.purge_older_than(session, cutoff)
    log.info("retention: purged %s (older than %d days)", counts.as_dict(), retention_days)
    return True


def build_scheduler(services: "Services", *, client: "WebClient | None" = None) -> "BackgroundScheduler":
    """A background scheduler (not started) with the nightly digest, the retention purge and, with a client, the
    recovery of questions that stopped instances left unanswered (at start, then every :data:`RECOVER_EVERY_S`)
    and, with a ticket system configured, the delivery of due tickets (at start, then every
    :data:`TICKETS_EVERY_S`).

    Args:
        services: The bot's services; the digest evaluates ``services.engine``.
        client: The Slack client the digest and recovered answers are posted with (None: evaluate and store only).
    """
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.triggers.cron import CronTrigger

    settings = services.settings
    zone = settings.timezone
    scheduler = BackgroundScheduler(timezone=zone, job_defaults={
        "coalesce": True, "misfire_grace_time": MISFIRE_GRACE_S, "max_instances": 1})
    scheduler.add_job(run_nightly, CronTrigger.from_crontab(settings.digest_cron, timezone=zone), id=DIGEST_JOB,
                      args=[services, client])
    scheduler.add_job(run_retention, CronTrigger.from_crontab(RETENTION_CRON, timezone=zone), id="retention",
                      kwargs={"sessions": services.sessions, "retention_days": settings.retention_days})
    if client is not None:
        from bot.listeners.intake import recover

        scheduler.add_job(recover, "interval", seconds=RECOVER_EVERY_S, id="recover", args=[services, client],
                          next_run_time=datetime.now(timezone.utc), misfire_grace_time=RECOVER_EVERY_S)
    if settings.tickets != "none":
        add_ticket_job(scheduler, services, client)
    return scheduler


def add_ticket_job(scheduler: "BackgroundScheduler", services: "Services", client: "WebClient | None", *,
                   every_s: float = TICKETS_EVERY_S) -> None:
    """Send every escalation's due ticket, from either door, at start and then every ``every_s`` (with retries;
    each ticket is leased in the database first, so several processes never send one twice)."""
    from bot.helpdesk import deliver_tickets

    scheduler.add_job(deliver_tickets, "interval", seconds=every_s, id="tickets", args=[services, client],
                      next_run_time=datetime.now(timezone.utc), misfire_grace_time=max(1, round(every_s)))

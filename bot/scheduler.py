"""Scheduled jobs inside ``itbot run``: the daily retention purge (the nightly digest joins it later).

Jobs coalesce and have a misfire grace period, so a laptop that slept or a
restart neither skips nor doubles a run; a claim row in the database makes
exactly one of several bot instances run each day's job.
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from storage import repository as repo

if TYPE_CHECKING:
    from apscheduler.schedulers.background import BackgroundScheduler
    from sqlalchemy.orm import Session, sessionmaker

__all__ = ["run_retention", "build_scheduler", "RETENTION_CRON"]

log = logging.getLogger(__name__)
RETENTION_CRON = "30 3 * * *"


def _holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def run_retention(sessions: "sessionmaker[Session]", *, retention_days: int, today: str | None = None) -> bool:
    """Purge conversations older than the retention period, once per day across all instances.

    Returns:
        True when this instance ran the purge, False when another one already had it today.
    """
    period = today or datetime.now(timezone.utc).strftime("%Y-%m-%d")
    with sessions.begin() as session:
        if not repo.acquire_job_lock(session, name="retention", period_key=period, holder=_holder()):
            return False
    cutoff = datetime.now(timezone.utc) - timedelta(days=retention_days)
    with sessions.begin() as session:
        counts = repo.purge_older_than(session, cutoff)
    log.info("retention: purged %s (older than %d days)", counts.as_dict(), retention_days)
    return True


def build_scheduler(sessions: "sessionmaker[Session]", *, retention_days: int, timezone_name: str) -> "BackgroundScheduler":
    """A started-later background scheduler with the retention job."""
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.triggers.cron import CronTrigger

    scheduler = BackgroundScheduler(timezone=timezone_name,
                                    job_defaults={"coalesce": True, "misfire_grace_time": 6 * 3600, "max_instances": 1})
    scheduler.add_job(run_retention, CronTrigger.from_crontab(RETENTION_CRON, timezone=timezone_name), id="retention",
                      kwargs={"sessions": sessions, "retention_days": retention_days})
    return scheduler

"""The nightly job: evaluate the live engine on the held-out split, store the run, post the digest and its chart.

Runs at ``ITBOT_DIGEST_CRON`` inside ``itbot run`` (see :mod:`bot.scheduler`)
and once on demand with ``itbot digest --now``. A claim row per local date
makes exactly one of several instances sharing a database run each night's
job. When the evaluation fails, the digest still goes out, saying so, with the
operations figures: silence would look like a healthy night.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from bot.digest import Digest, RunInfo, build_digest, run_metrics
from bot.digest_blocks import digest_message
from bot.posting import post_once
from bot.trend_chart import CHART_RUNS, TrendPoint, trend_chart
from storage import repository as repo

if TYPE_CHECKING:
    from slack_sdk import WebClient
    from sqlalchemy.orm import Session, sessionmaker

    from bot.services import Services

__all__ = ["DIGEST_JOB", "NightlyResult", "held_out_questions", "stored_trend", "run_nightly", "job_holder"]

log = logging.getLogger(__name__)
DIGEST_JOB = "digest"


def job_holder() -> str:
    """Who claims a scheduled job: host name and process id, kept in the claim row for diagnosis."""
    import os
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True, slots=True)
class NightlyResult:
    """What one run of the job produced."""

    digest: Digest
    chart: bytes | None
    posted_ts: str | None = None


def held_out_questions(answer_mode: str, path: Path | None = None, *, limit: int = 0) -> list[dict]:
    """The labelled questions the evaluation answers.

    kb mode uses the intent test split; model modes the SFT test split, whose
    rows also carry reference answers for ROUGE-L. Both are the same held-out
    questions. ``limit`` keeps N evenly spread rows (0 keeps all), for slow CPU models.

    Raises:
        DatasetError: The file is missing, not JSON lines, or a row has no ``text``.
    """
    from data import SFT_DIR, SPLITS_DIR
    from data.utterances import read_jsonl
    from llm.errors import DatasetError

    default = SPLITS_DIR / "test.jsonl" if answer_mode == "kb" else SFT_DIR / "test.jsonl.gz"
    rows = read_jsonl(path or default)
    bad = next((i + 1 for i, row in enumerate(rows) if not isinstance(row.get("text"), str)), None)
    if bad is not None:
        raise DatasetError(f"{path or default}: line {bad} has no 'text' string")
    if not limit or limit >= len(rows):
        return rows
    return [rows[i * len(rows) // limit] for i in range(limit)]  # evenly spread: the splits are grouped by intent


def stored_trend(sessions: "sessionmaker[Session]", n: int = CHART_RUNS) -> list[TrendPoint]:
    """The last ``n`` stored evaluation runs, oldest first, as chart points."""
    with sessions() as session:
        return [TrendPoint(at=run.started_at, metrics=dict(run.metrics), mode=run.mode)
                for run in repo.last_evaluation_runs(session, n)]


def _evaluate(services: "Services", questions: Path | None) -> tuple[RunInfo, dict[str, float], dict | None]:
    """Run the evaluation and store it; returns what ran, tonight's figures and the previous run's."""
    from answers.evaluation import evaluate_engine
    from storage.types import utcnow

    settings, engine = services.settings, services.engine
    with services.sessions() as session:
        runs = repo.last_evaluation_runs(session, 1)
        previous = dict(runs[-1].metrics) if runs else None
    started = utcnow()
    rows = held_out_questions(engine.answer_mode, questions, limit=settings.digest_questions)
    report, _ = evaluate_engine(engine, rows)
    metrics = run_metrics(report)
    finished = utcnow()
    adapter = settings.adapter if engine.answer_mode != "kb" else None
    with services.sessions.begin() as session:
        repo.add_evaluation_run(session, started_at=started, finished_at=finished, model=settings.model,
                                adapter=adapter, mode=engine.answer_mode, metrics=metrics, n=len(rows))
    info = RunInfo(mode=engine.answer_mode, model=settings.model, adapter=adapter, n=len(rows),
                   duration_s=(finished - started).total_seconds())
    log.info("nightly evaluation: %d questions in %.1f s: %s", len(rows), info.duration_s, metrics)
    return info, metrics, previous


def run_nightly(services: "Services", client: "WebClient | None" = None, *, force: bool = False,
                questions: Path | None = None, now: datetime | None = None) -> NightlyResult | None:
    """Evaluate, store the run, and post the digest with its trend chart to ``ITBOT_DIGEST_CHANNEL``.

    Args:
        services: The bot's services (live engine, database sessions, settings).
        client: A Slack Web API client; without one (or without a digest channel) nothing is posted.
        force: Run even if this night's job already ran (``itbot digest --now``); no claim is taken.
        questions: Labelled questions to evaluate instead of the held-out split.
        now: The current time (tests).

    Returns:
        The result, or None when another instance already has tonight's job.
    """
    settings = services.settings
    now = now or datetime.now(timezone.utc)
    day = now.astimezone(ZoneInfo(settings.timezone)).date()
    if not force:
        with services.sessions.begin() as session:
            if not repo.acquire_job_lock(session, name=DIGEST_JOB, period_key=day.isoformat(), holder=job_holder()):
                log.info("nightly digest for %s: another instance has it", day)
                return None
    try:
        run, metrics, previous = _evaluate(services, questions)
        error = None
    except Exception as failure:  # noqa: BLE001 - any failure still produces a digest saying so
        reference = uuid.uuid4().hex[:8]
        log.error("nightly evaluation failed (ref %s): %s", reference, failure.__class__.__name__, exc_info=failure)
        run, metrics, previous, error = None, None, None, f"{failure.__class__.__name__}, ref {reference}"
    with services.sessions() as session:
        ops = repo.operations_stats(session, until=now)
    digest = build_digest(day=day, ops=ops, run=run, metrics=metrics, previous=previous, error=error)
    points = stored_trend(services.sessions)
    chart = trend_chart(points, title=f"Answer quality, last {len(points)} runs") if points else None
    posted = _post(client, settings.digest_channel, digest, chart) if client is not None else None
    return NightlyResult(digest=digest, chart=chart, posted_ts=posted)


def _post(client: "WebClient", channel: str | None, digest: Digest, chart: bytes | None) -> str | None:
    """Post the digest, then upload the chart into its thread; returns the digest's ts."""
    if not channel:
        log.warning("nightly digest not posted: set ITBOT_DIGEST_CHANNEL to a channel id")
        return None
    response = post_once(client, channel=channel, unfurl_links=False, **digest_message(digest))
    ts = response["ts"]
    if chart is not None:
        client.files_upload_v2(channel=channel, thread_ts=ts, file=chart, filename=f"itbot-trend-{digest.day}.png",
                               title="Answer quality trend", alt_txt="Evaluation scores and latency, last runs")
    log.info("nightly digest for %s posted to %s", digest.day, channel)
    return ts

"""The nightly digest: the helpdesk team's morning figures, posted once, even when the evaluation fails."""

from __future__ import annotations

import json
import re
import signal
import threading
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from bot.app import build_services
from bot.digest import build_digest, compare, run_metrics
from bot.digest_blocks import digest_message, digest_text
from bot.nightly import held_out_questions, run_nightly
from bot.scheduler import build_scheduler
from bot.settings import Settings
from answers.evaluation import evaluate_engine
from storage import repository as repo
from storage.models import EvaluationRun, JobLock
from storage.migrate import upgrade
from storage.stats import OperationsStats
from tests.conftest import run_itbot, start_itbot

DIGEST = "C0DIGEST01"
NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
PNG = b"\x89PNG\r\n\x1a\n"
QUESTIONS = 150  # of the 734 held-out ones: enough to measure, quick on a busy machine
YESTERDAY_RUN = {"intent_accuracy": 0.999, "oos_f1": 0.85, "action_accuracy": 0.95, "latency_p50_ms": 2.0,
                 "latency_p95_ms": 20.0}




def _settings(tmp_path, **overrides) -> Settings:
    settings = Settings(_env_file=None, database_url=f"sqlite:///{tmp_path / 'itbot.db'}", digest_channel=DIGEST,
                        digest_questions=QUESTIONS, **overrides)
    upgrade(settings.database_url)
    return settings


@pytest.fixture
def services(tmp_path, engine):
    services = build_services(_settings(tmp_path), engine=engine)
    yield services
    services.worker.shutdown()


def _seed_yesterday(services) -> None:
    """Four conversations in the last 24 hours: one answered, one escalated and resolved, one "Not helpful", and
    one IT question no article covers."""
    with services.sessions.begin() as session:
        repo.add_evaluation_run(session, started_at=NOW - timedelta(days=1), finished_at=NOW - timedelta(days=1),
                                model="kb", mode="kb", metrics=YESTERDAY_RUN, n=734)
        answers = []
        for index, (user, question, intent) in enumerate([
            ("U0ALICE01", "how do I reset my password", "password_reset"),
            ("U0BOB0001", "vpn drops every hour <!channel>", "vpn"),
            ("U0CAROL01", "printer on floor 2 is offline", "printer"),
        ]):
            conversation = repo.get_or_create_conversation(session, team_id="T1", channel_id=f"D{index}",
                                                           thread_ts=f"{index}.0", user_id=user, source="dm")
            asked = repo.append_message(session, conversation_id=conversation.id, role="user", text=question)
            answer = repo.append_message(session, conversation_id=conversation.id, role="assistant", text="Steps…",
                                         intent=intent, action="answer")
            conversation.created_at = asked.created_at = answer.created_at = NOW - timedelta(hours=10 - index)
            answers.append((conversation, answer))
        gap = repo.get_or_create_conversation(session, team_id="T1", channel_id="D9", thread_ts="9.0",
                                              user_id="U0DAVE001", source="dm")
        asked = repo.append_message(session, conversation_id=gap.id, role="user", text="Zorblax export is broken")
        reply = repo.append_message(session, conversation_id=gap.id, role="assistant", text="No article yet…",
                                    intent="software_issue", action="escalate", reason="not covered")
        gap.created_at = asked.created_at = reply.created_at = NOW - timedelta(hours=3)
        escalation, _ = repo.open_escalation(session, conversation_id=answers[2][0].id, summary="printer offline")
        escalation.created_at = NOW - timedelta(hours=7)
    with services.sessions.begin() as session:
        repo.claim_escalation(session, escalation.id, agent_id="U0AGENT001", at=NOW - timedelta(hours=6, minutes=48))
        repo.resolve_escalation(session, escalation.id, agent_id="U0AGENT001", at=NOW - timedelta(hours=5))
        repo.rate_escalation(session, escalation.id, user_id="U0CAROL01", rating=5)
        for (_, answer), user, kind in zip(answers, ("U0ALICE01", "U0BOB0001"), ("solved", "not_helpful")):
            repo.record_feedback(session, message_id=answer.id, user_id=user, kind=kind).created_at = NOW - timedelta(hours=1)


def _texts(message: dict) -> str:
    return json.dumps(message.get("blocks", []), ensure_ascii=False)


def test_the_morning_digest_shows_tonights_figures_against_yesterday_and_the_last_day(services, fake, engine):
    _seed_yesterday(services)
    result = run_nightly(services, fake.web_client(), now=NOW)

    expected, _ = evaluate_engine(engine, held_out_questions("kb", limit=QUESTIONS))
    posted = fake.messages(DIGEST)
    assert len(posted) == 1 and posted[0]["ts"] == result.posted_ts
    blocks = _texts(posted[0])
    assert f"*Intent accuracy*\\n{expected['intent_accuracy']:.3f}" in blocks
    assert f"*Out-of-scope F1*\\n{expected['out_of_scope']['f1']:.3f}" in blocks
    fell = YESTERDAY_RUN["intent_accuracy"] - expected["intent_accuracy"]
    assert f"▼ −{fell:.3f}" in blocks and "Intent accuracy fell from 0.999" in blocks
    assert f"{QUESTIONS} held-out questions" in blocks
    assert "*Conversations*\\n4" in blocks
    assert "*Answered without a human*\\n75% (3)" in blocks
    assert "*Knowledge-base gaps*\\n1 IT question no article covered" in blocks
    assert "Questions no article covers" in blocks and "Zorblax export is broken" in blocks
    assert "*Escalations opened / claimed / resolved*\\n1 / 1 / 1" in blocks
    assert "*Median time to claim*\\n12 min" in blocks and "5.0 / 5 (1 ratings)" in blocks
    assert "*Helpful / not helpful*\\n1 / 1 (50% helpful)" in blocks
    assert "Password reset (1)" in blocks
    assert "vpn drops every hour &lt;!channel&gt;" in blocks and "<!channel>" not in json.dumps(posted[0])

    with services.sessions() as session:
        runs = repo.last_evaluation_runs(session)
    assert len(runs) == 2 and runs[-1].metrics["intent_accuracy"] == expected["intent_accuracy"]
    chart = fake.files()
    assert len(chart) == 1 and chart[0]["content"].startswith(PNG) and chart[0]["thread_ts"] == result.posted_ts


def test_a_failing_evaluation_posts_an_error_digest_instead_of_nothing(services, fake, tmp_path):
    result = run_nightly(services, fake.web_client(), now=NOW, questions=tmp_path / "gone.jsonl")

    assert result.digest.error and result.digest.error.startswith("DatasetError, ref ")
    [posted] = fake.messages(DIGEST)
    assert "The nightly evaluation failed" in _texts(posted) and "*Conversations*\\n0" in _texts(posted)
    assert "Intent accuracy" not in _texts(posted)
    with services.sessions() as session:
        assert repo.last_evaluation_runs(session) == []
    assert fake.files() == []  # no runs yet, so no chart


def test_the_job_runs_once_per_night_per_database(services, fake, tmp_path):
    questions = tmp_path / "q.jsonl"
    questions.write_text('{"text": "wifi is down", "intent": "wifi", "action": "answer"}\n', encoding="utf-8")
    assert run_nightly(services, fake.web_client(), now=NOW, questions=questions) is not None
    assert run_nightly(services, fake.web_client(), now=NOW + timedelta(hours=1), questions=questions) is None
    assert run_nightly(services, fake.web_client(), now=NOW + timedelta(days=1), questions=questions) is not None
    assert len(fake.messages(DIGEST)) == 2


def test_two_schedulers_on_one_database_post_one_digest(tmp_path, engine, fake):
    from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED

    settings = _settings(tmp_path, timezone="Europe/Berlin")
    instances = [build_services(settings, engine=engine) for _ in range(2)]
    schedulers = [build_scheduler(services, client=fake.web_client()) for services in instances]
    finished: list[str] = []
    done = threading.Condition()

    def on_job(event) -> None:
        if event.job_id == "digest":
            with done:
                finished.append("error" if event.exception else "ok")
                done.notify_all()

    try:
        for scheduler in schedulers:
            scheduler.add_listener(on_job, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
            scheduler.start(paused=True)
            scheduler.modify_job("digest", next_run_time=datetime.now(UTC))
        for scheduler in schedulers:
            scheduler.resume()
        with done:
            assert done.wait_for(lambda: len(finished) == 2, timeout=60), finished
    finally:
        for scheduler in schedulers:
            scheduler.shutdown(wait=True)
        for services in instances:
            services.worker.shutdown()
    assert finished == ["ok", "ok"]
    assert len(fake.messages(DIGEST)) == 1
    with instances[0].sessions() as session:
        assert session.scalar(select(func.count()).select_from(EvaluationRun)) == 1
        assert session.scalar(select(func.count()).select_from(JobLock).where(JobLock.name == "digest")) == 1


def test_the_digest_is_scheduled_at_the_configured_time_and_zone(tmp_path, engine):
    services = build_services(_settings(tmp_path, timezone="Europe/Berlin", digest_cron="15 6 * * 1-5"),
                              engine=engine)
    scheduler = build_scheduler(services)
    scheduler.start(paused=True)
    try:
        digest, retention = scheduler.get_job("digest"), scheduler.get_job("retention")
        assert str(digest.next_run_time.tzinfo) == "Europe/Berlin"
        assert (digest.next_run_time.hour, digest.next_run_time.minute, digest.next_run_time.weekday() < 5) == (6, 15, True)
        assert (retention.next_run_time.hour, retention.next_run_time.minute) == (3, 30)
        assert digest.coalesce and digest.misfire_grace_time >= 3600 and digest.max_instances == 1
    finally:
        scheduler.shutdown(wait=False)
        services.worker.shutdown()


def test_a_drop_past_the_threshold_warns_and_noise_does_not():
    previous = {"intent_accuracy": 0.95, "oos_f1": 0.90, "action_accuracy": 0.95, "latency_p95_ms": 20.0,
                "latency_p50_ms": 200.0}
    tonight = {"intent_accuracy": 0.94, "oos_f1": 0.85, "action_accuracy": 0.97, "latency_p95_ms": 45.0,
               "latency_p50_ms": 450.0}
    lines = {line.spec.key: line for line in compare(tonight, previous)}
    assert not lines["intent_accuracy"].dropped  # −0.01 is within tolerance
    assert lines["oos_f1"].dropped and lines["oos_f1"].change == "▼ −0.050"
    assert not lines["action_accuracy"].dropped and lines["action_accuracy"].change == "▲ +0.020"
    assert not lines["latency_p95_ms"].dropped  # doubled, but by 25 ms only
    assert lines["latency_p50_ms"].dropped and "rose from 200 ms to 450 ms" in lines["latency_p50_ms"].warning
    first = compare(tonight, None)
    assert all(line.change == "first run" and not line.dropped for line in first)


def test_rouge_l_is_tracked_only_when_a_model_answers():
    report = {"latency_ms": {"p50": 1, "p95": 2}, "intent_accuracy": 0.9, "rouge_l": 1.0,
              "out_of_scope": {"f1": 0.8}}
    assert "rouge_l" not in run_metrics({**report, "mode": "kb"})
    assert run_metrics({**report, "mode": "llm"})["rouge_l"] == 1.0


def test_the_terminal_digest_reads_like_the_slack_one():
    ops = OperationsStats(since=NOW - timedelta(days=1), until=NOW, conversations=10, answered_without_human=8,
                          top_intents=[("vpn", 4)], not_helpful_questions=["x" * 500])
    digest = build_digest(day=date(2026, 11, 24), ops=ops, metrics={"intent_accuracy": 0.9, "latency_p95_ms": 12.0},
                          previous={"intent_accuracy": 0.95})
    text = digest_text(digest)
    assert "Intent accuracy" in text and "▼ −0.050" in text and "WARNING: Intent accuracy fell" in text
    assert re.search(r"Answered without a human +80% \(8\)", text) and "VPN (4)" in text
    assert "x" * 199 + "…" in text and "x" * 201 not in text
    message = digest_message(digest)
    assert len(message["blocks"]) <= 50 and len(message["text"]) < 4000


def test_itbot_digest_now_prints_the_digest_without_slack_and_writes_the_chart(tmp_path):
    env = {"ITBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'itbot.db'}", "ITBOT_DIGEST_QUESTIONS": "60"}
    result = run_itbot("digest", "--now", "--plot", str(tmp_path / "trend.png"), env=env)
    assert result.returncode == 0, result.stderr
    assert "Intent accuracy" in result.stdout and "first run" in result.stdout and "Last 24 hours" in result.stdout
    assert (tmp_path / "trend.png").read_bytes().startswith(PNG)
    questions = tmp_path / "q.jsonl"
    questions.write_text('{"text": "my laptop is slow", "intent": "slow_computer", "action": "answer"}\n', encoding="utf-8")
    again = run_itbot("eval", "--queries", str(questions), "--plot", str(tmp_path / "eval.png"), env=env)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "eval.png").read_bytes().startswith(PNG)


def test_itbot_digest_without_now_says_how_to_run_it():
    result = run_itbot("digest")
    assert result.returncode != 0 and "itbot digest --now" in result.stderr


def test_itbot_run_logs_when_the_digest_runs_next_and_stops_cleanly_on_sigterm(tmp_path, fake):
    env = {"SLACK_BOT_TOKEN": fake.bot_token, "SLACK_APP_TOKEN": fake.app_token, "SLACK_API_URL": fake.api_url,
           "ITBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'itbot.db'}", "ITBOT_DIGEST_CHANNEL": DIGEST,
           "ITBOT_DIGEST_CRON": "45 1 * * *", "ITBOT_TIMEZONE": "Asia/Tokyo", "ITBOT_METRICS_PORT": "0"}
    process = start_itbot("run", env=env)
    try:
        fake.wait_for_connection(timeout=120)
    finally:
        process.send_signal(signal.SIGTERM)
        _, log = process.communicate(timeout=60)
    assert process.returncode == 0, log
    assert re.search(r"scheduled digest: next run \d{4}-\d\d-\d\d 01:45:00\+09:00", log), log
    assert "stopped" in log

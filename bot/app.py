"""Composition root: settings -> services -> Bolt app -> Socket Mode."""

from __future__ import annotations

import gc
import logging
import signal
import threading
from typing import TYPE_CHECKING

from bot.listeners import register_listeners
from bot.ratelimit import RateLimiter
from bot.services import Services
from bot.worker import Worker

if TYPE_CHECKING:
    from typing import Callable

    from slack_bolt import App
    from slack_bolt.adapter.socket_mode.websocket_client import SocketModeHandler
    from slack_sdk import WebClient

    from bot.settings import Settings
    from answers.engine import AnswerEngine
    from llm.remote import RemoteGenerator
    from llm.service import ModelService
    from web.server import WebServer

__all__ = ["build_client", "build_generator", "build_services", "warm_up_in_background", "build_app",
           "socket_mode_handler", "readiness_checks", "start_web", "close_within", "run"]

log = logging.getLogger(__name__)
SOCKET_CLOSE_TIMEOUT_S = 10.0
SIGNAL_POLL_S = 0.5


def build_client(settings: "Settings") -> "WebClient":
    """The Web API client: configured base URL and proxy, retries on 429, 5xx and dropped connections, and the
    last call's outcome kept for /readyz."""
    from slack_sdk import WebClient

    from bot.posting import retry_handlers
    from bot.slack_health import LastCall

    assert settings.slack_bot_token is not None
    client = WebClient(token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_base_url,
                       timeout=15, proxy=settings.slack_proxy())
    client.retry_handlers.insert(0, LastCall())  # first: the SDK stops asking at the first handler that retries
    client.retry_handlers.extend(retry_handlers())
    return client


def build_generator(settings: "Settings") -> "ModelService | RemoteGenerator":
    """The model server's client when ``ITBOT_LLM_URL`` is set, else the local model service (loaded lazily on first
    use); missing files are a configuration error."""
    from pathlib import Path

    from bot.errors import ConfigError
    from llm.errors import ModelError
    from llm.model_files import resolve_adapter, resolve_model
    from llm.service import load_generator

    if settings.llm_url:
        return build_remote_generator(settings)
    try:
        model = resolve_model(settings.model, cache_dir=settings.cache_dir)
    except ModelError as error:
        raise ConfigError(f"ITBOT_MODEL: {error}") from None
    adapter = resolve_adapter(settings.adapter, model=settings.model)
    if adapter and not (Path(adapter).expanduser() / "adapter_config.json").is_file():
        raise ConfigError(f"ITBOT_ADAPTER: no LoRA adapter at {adapter} (expected adapter_config.json; "
                          "'none' turns the adapter off)")
    # the adapter is folded into unquantized weights: decoding then costs what the base model costs
    return load_generator(model, adapter=adapter, quantization=settings.quantization, merge_adapter=True,
                          cache_dir=settings.cache_dir, dtype=None if settings.dtype == "auto" else settings.dtype,
                          timeout_s=settings.generation_timeout_s, max_new_tokens=settings.max_new_tokens,
                          runtime=settings.llm_runtime, onnx_precision=settings.onnx_precision)


def build_remote_generator(settings: "Settings") -> "RemoteGenerator":
    """The client of the OpenAI-compatible server at ``ITBOT_LLM_URL`` (nothing is sent until it is used)."""
    from bot.errors import ConfigError
    from llm.errors import ModelError
    from llm.remote import RemoteConfig, RemoteGenerator

    assert settings.llm_url is not None
    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    try:
        return RemoteGenerator(RemoteConfig(url=settings.llm_url, model=settings.llm_model or settings.model,
                                            api_key=key, max_new_tokens=settings.max_new_tokens,
                                            timeout_s=settings.generation_timeout_s))
    except ModelError as error:
        raise ConfigError(f"ITBOT_LLM_URL: {error}") from None


def warm_up_in_background(engine: "AnswerEngine") -> None:
    """Warm the engine's model up (:func:`_warm_up`) on a thread, so that nothing waits for it."""
    if engine.generator is not None:
        threading.Thread(target=_warm_up, args=(engine,), name="itbot-model-load", daemon=True).start()


def _warm_up(engine: "AnswerEngine") -> None:
    """Load the local model and compute its prompt's rules, or ask the model server for its models, in the
    background: one line if it fails."""
    from llm.errors import ModelError

    try:
        engine.warm_up()
    except ModelError as error:
        log.error("language model not ready, answers use the curated steps until it is: %s", error)


def build_services(settings: "Settings", *, engine: "AnswerEngine | None" = None) -> Services:
    """Engine (with the model service unless in kb mode), database sessions, worker pool and rate limiter."""
    from answers.engine import build_engine
    from storage.db import make_engine, make_session_factory
    from storage.dbfile import watch_database_file
    from storage.inbox import intake_sessions

    if engine is None:
        generator = build_generator(settings) if settings.answer_mode != "kb" else None
        engine = build_engine(settings.engine_config(), generator=generator)

    database = make_engine(settings.database_url)
    sessions = make_session_factory(database)
    services = Services(
        settings=settings,
        engine=engine,
        sessions=sessions,
        intake_sessions=intake_sessions(database),
        # a burst of a few thousand questions is queued (a few KB each), not refused; beyond that users are told
        worker=Worker(threads=4, capacity=5000),
        # counted in the database, so the limit holds across replicas
        limiter=RateLimiter(count=settings.rate_limit.count, period_s=settings.rate_limit.period_s,
                            sessions=sessions),
        agents=frozenset(settings.agent_user_ids),
    )
    services.metrics.queue_depth.set_function(lambda: services.worker.in_flight)
    services.database_file = watch_database_file(
        database, on_lost=lambda problem: _database_file_lost(services, problem))
    return services


def _database_file_lost(services: Services, problem: str) -> None:
    """Say loudly, once, that the SQLite file is gone: SQLite goes on writing to the unlinked file."""
    assert services.database_file is not None
    services.metrics.database_file_lost.labels(problem=problem).inc()
    log.error("the database file %s was %s while the bot had it open: what is stored from now on is lost at the "
              "next restart; stop the bot, restore the file from a backup, and start it again",
              services.database_file.path, problem)


def readiness_checks(services: Services, handler: "SocketModeHandler | None") -> dict[str, "Callable[[], bool]"]:
    """What /readyz checks: each thing every answer needs (see ``bot/metrics.py``); no file checks on PostgreSQL."""
    from bot.slack_health import slack_api_ready
    from storage.db import probe_write

    database_file = services.database_file

    def database() -> bool:
        with services.sessions() as session:
            probe_write(session)
            session.rollback()
        return database_file is None or database_file.writable()

    generator = services.engine.generator
    checks = {
        "database": database,
        "slack": lambda: handler is not None and handler.client.is_connected(),
        "slack_api": lambda: handler is not None and slack_api_ready(handler.app.client),
        "model": lambda: generator is None or bool(getattr(generator, "ready", True)),
    }
    if database_file is not None:
        minimum = services.settings.min_free_disk_mb * 1024 * 1024
        checks["database_file"] = lambda: database_file.problem() is None
        checks["disk"] = lambda: database_file.free_bytes() >= minimum
    return checks


def build_app(settings: "Settings", services: Services, *, client: "WebClient | None" = None) -> "App":
    """The Bolt app with every listener registered."""
    from slack_bolt import App

    client = client or build_client(settings)
    services.bot_user_id = client.auth_test()["user_id"]
    if settings.agent_usergroup:
        from bot.agents import AgentGroup

        services.agent_group = AgentGroup(client, settings.agent_usergroup)
    app = App(client=client, token_verification_enabled=False, process_before_response=False)
    register_listeners(app, services)
    return app


def socket_mode_handler(app: "App", app_token: str, *, ping_interval: float = 5,
                        proxy: str | None = None) -> "SocketModeHandler":
    """The Socket Mode connection, on the ``websocket-client`` library.

    Not slack_sdk's builtin client: it parses the bytes waiting in its socket with one recursive call per 1 KB
    read, so a burst of long messages (Slack allows 40,000 characters; people paste logs) ended in RecursionError,
    a dropped connection and lost acks, and it logged fragments of what users typed as "unsupported data frame"
    warnings (``tests/test_faults.py`` has the burst).

    A ping every 5 s (the builtin client's default; the adapter's is 10) bounds shutdown: after the close, the
    reader thread sleeps in ``select`` until the next pong wakes it, up to one ping interval.

    ``proxy`` (``settings.slack_proxy()``, the Web API client's too): the WebSocket goes through it with
    ``CONNECT``; websocket-client still skips it for hosts in the ``NO_PROXY`` environment variable.
    """
    from slack_bolt.adapter.socket_mode.websocket_client import SocketModeHandler

    from bot.settings import proxy_address

    host, port, auth = proxy_address(proxy) if proxy else (None, None, None)
    return SocketModeHandler(app, app_token, ping_interval=ping_interval, http_proxy_host=host, http_proxy_port=port,
                             http_proxy_auth=auth, proxy_type="http" if host else None)


def start_web(settings: "Settings", services: Services, *, client: "WebClient") -> "WebServer":
    """The web chat on ``ITBOT_WEB_PORT``, on a thread: the same engine, database and Slack client as the app."""
    from web.app import create_app
    from web.config import WebContext
    from web.server import WebServer

    context = WebContext(config=settings.web_config(), engine=services.engine, sessions=services.sessions,
                         slack=client)
    return WebServer(create_app(context), host=settings.web_host, port=settings.web_port).start()


def close_within(handler: "SocketModeHandler", seconds: float) -> bool:
    """Close the Socket Mode connection, giving up after ``seconds``; True if it closed in time.

    websocket-client's adapter sometimes hangs in ``close()`` (seen in 1 of 20 stops right after a start, under
    CPU load; likely while its monitor replaces the first connection, which it does after every start). Shutdown
    must not wait for it: the answers in flight still finish and the process exits
    (the client's threads are daemons); Slack redelivers whatever was not acknowledged.
    """
    closer = threading.Thread(target=handler.close, name="itbot-socket-close", daemon=True)
    closer.start()
    closer.join(seconds)
    if closer.is_alive():
        log.warning("the Socket Mode connection did not close within %.0f s; shutting down without it", seconds)
        return False
    return True


def run(settings: "Settings") -> None:
    """Run until SIGTERM/SIGINT: Socket Mode connection, listeners, worker."""
    from bot.slack_startup import check_slack

    settings = check_slack(settings)  # tokens, network and channel names first, in one line each
    services = build_services(settings)
    app = build_app(settings, services)
    assert settings.slack_app_token is not None
    handler = socket_mode_handler(app, settings.slack_app_token.get_secret_value(), proxy=settings.slack_proxy())
    web = start_web(settings, services, client=app.client) if settings.web_port else None
    # Everything loaded so far (router, knowledge base, libraries) lives as long as the process: out of the
    # collector's sight, a full collection no longer walks it, which paused every thread (acks included) for
    # ~80 ms in the middle of a burst.
    gc.collect()
    gc.freeze()
    health = None
    if settings.metrics_port:
        from bot.metrics import HealthServer

        health = HealthServer(services.metrics, readiness_checks(services, handler), host=settings.metrics_host,
                              port=settings.metrics_port).start()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    from bot.scheduler import build_scheduler

    scheduler = build_scheduler(services, client=app.client)
    scheduler.start()
    for job in scheduler.get_jobs():
        log.info("scheduled %s: next run %s", job.id, job.next_run_time)
    generator = services.engine.generator
    warm_up_in_background(services.engine)  # without delaying the connection
    handler.connect()
    log.info("connected to Slack in Socket Mode as %s; answer mode %s", services.bot_user_id, settings.answer_mode)
    # Wake now and then: Python runs a signal handler only when the main thread runs bytecode, and the kernel may
    # hand SIGTERM to one of the client's threads, which leaves a main thread blocked in a plain wait() asleep
    # for good (seen: `itbot run` ignoring SIGTERM for over 60 s).
    while not stop.wait(SIGNAL_POLL_S):
        pass
    log.info("shutting down: finishing %d answers in flight", services.worker.in_flight)
    scheduler.shutdown(wait=False)
    close_within(handler, SOCKET_CLOSE_TIMEOUT_S)
    services.worker.shutdown(wait=True)
    if health is not None:
        health.stop()
    if web is not None:
        web.stop()
    if generator is not None:
        generator.close()
    log.info("stopped")

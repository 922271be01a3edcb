"""Shared fixtures: a scrubbed environment, a shared router cache, the engine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for the whole run, so the router is trained once (``ITBOT_TEST_CACHE_DIR`` keeps it across runs)."""
    kept = os.environ.get("ITBOT_TEST_CACHE_DIR")
    return Path(kept) if kept else tmp_path_factory.mktemp("itbot-cache")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cache_dir: Path) -> None:
    """No real SLACK_*/ITBOT_* variables or .env file leak into a test."""
    for name in list(os.environ):
        if name.startswith(("SLACK_", "ITBOT_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ITBOT_CACHE_DIR", str(cache_dir))
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def engine(cache_dir: Path):
    """The real answer engine with the default organisation profile, in kb mode."""
    from bot.settings import Settings

    from answers.engine import build_engine

    settings = Settings(_env_file=None, cache_dir=cache_dir)
    return build_engine(settings.engine_config())


def _unset_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake Slack listens on 127.0.0.1: a proxy from the environment must not intercept it."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch):
    """A local fake Slack (Web API and Socket Mode on 127.0.0.1) with no app connected."""
    from tests.fakeslack import FakeSlack

    _unset_proxies(monkeypatch)
    with FakeSlack.start() as fake:
        yield fake


@pytest.fixture
def make_bot(tmp_path: Path, engine, monkeypatch: pytest.MonkeyPatch):
    """Start the real Slack app on a local fake Slack: ``make_bot(engine=None, handler_kwargs=None, **settings)``.

    Each call gets its own fake, database file and services (see ``tests/slackbot.py``); all stop after the test.
    """
    from contextlib import ExitStack

    from tests.slackbot import running_bot

    _unset_proxies(monkeypatch)
    started: list[object] = []
    with ExitStack() as stack:
        def make(*, engine=engine, **options):
            database = tmp_path / (f"itbot-{len(started)}.db" if started else "itbot.db")
            started.append(stack.enter_context(running_bot(database, engine, **options)))
            return started[-1]

        yield make


@pytest.fixture
def bot(make_bot):
    """The real Slack app on a local fake Slack, with the default test settings."""
    return make_bot()


def _itbot(env: dict[str, str] | None) -> tuple[list[str], dict[str, str]]:
    """The real ``itbot`` entry point and a scrubbed environment for it."""
    script = Path(sys.executable).with_name("itbot")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "bot"]
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "ITBOT_"))}
    full_env["ITBOT_CACHE_DIR"] = os.environ.get("ITBOT_CACHE_DIR", "")
    full_env["PYTHONPATH"] = str(REPO)
    full_env.update(env or {})
    return command, full_env


def run_itbot(*args: str, stdin: str = "", env: dict[str, str] | None = None, cwd: Path | None = None,
              timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """Run the real ``itbot`` entry point in a subprocess."""
    command, full_env = _itbot(env)
    return subprocess.run(command + list(args), input=stdin, capture_output=True, text=True, env=full_env,
                          cwd=cwd, timeout=timeout)


def start_itbot(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start the real ``itbot`` entry point in the background (stdout and stderr piped)."""
    command, full_env = _itbot(env)
    return subprocess.Popen(command + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=full_env)


@pytest.fixture
def project_logs(caplog: pytest.LogCaptureFixture):
    """Log as ``itbot run`` does, at DEBUG, as plain text and as JSON lines; caplog keeps the raw records."""
    import io
    import logging

    from bot.logs import JsonFormatter, configure_logging

    root = logging.getLogger()
    loggers = [logger for logger in logging.Logger.manager.loggerDict.values() if isinstance(logger, logging.Logger)]
    saved = list(root.handlers), root.level, {logger: logger.level for logger in loggers}
    plain, json_lines = io.StringIO(), io.StringIO()
    configure_logging(level="DEBUG", stream=plain)
    as_json = logging.StreamHandler(json_lines)
    as_json.setFormatter(JsonFormatter())
    root.addHandler(as_json)
    root.addHandler(caplog.handler)
    yield plain, json_lines
    handlers, level, levels = saved
    root.handlers[:] = handlers
    root.setLevel(level)
    for logger, logger_level in levels.items():
        logger.setLevel(logger_level)

"""Web chat fixtures: the real app served by uvicorn on 127.0.0.1 (port 0) on a thread, and a small HTTP client.

``make_web(engine=..., slack=None, **settings)`` starts one on its own SQLite file (or on ``services=`` of a
running Slack bot, as ``itbot run`` does); everything stops after the test.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def events(self) -> list[tuple[str, dict]]:
        """The Server-Sent Events of a streamed answer, in order."""
        found = []
        for chunk in self.body.decode().split("\n\n"):
            lines = dict(line.split(": ", 1) for line in chunk.splitlines() if ": " in line)
            if "event" in lines:
                found.append((lines["event"], json.loads(lines.get("data", "{}"))))
        return found

    def event(self, name: str) -> dict:
        return next(data for event, data in self.events() if event == name)


@dataclass
class WebChat:
    """A running web chat and its context (engine, sessions, Slack client)."""

    host: str
    port: int
    context: Any
    database: Path | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def request(self, method: str, path: str, body: Any = None, *, headers: dict[str, str] | None = None,
                raw: bytes | None = None) -> Response:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        sent = {"Content-Type": "application/json", **self.headers, **(headers or {})}
        try:
            connection.request(method, path, body=data, headers=sent)
            response = connection.getresponse()
            return Response(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
        finally:
            connection.close()

    def start(self, **kwargs: Any) -> str:
        response = self.request("POST", "/api/conversations", {}, **kwargs)
        assert response.status == 201, response.body
        return response.json()["conversation"]

    def ask(self, token: str, text: str, **kwargs: Any) -> Response:
        body = {"text": text, **({"topic": kwargs.pop("topic")} if "topic" in kwargs else {})}
        return self.request("POST", f"/api/conversations/{token}/messages", body, **kwargs)


@pytest.fixture
def make_web(tmp_path: Path, engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from bot.settings import Settings
    from storage.db import make_engine, make_session_factory
    from storage.migrate import upgrade
    from web.app import create_app
    from web.config import WebContext
    from web.server import WebServer

    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    with ExitStack() as stack:
        count = 0

        def make(*, engine=engine, slack=None, services=None, database: Path | None = None, **options: Any) -> WebChat:
            nonlocal count
            count += 1
            if services is not None:
                settings = services.settings.model_copy(update=options)
                sessions, engine = services.sessions, services.engine
            else:
                database = database or tmp_path / f"web-{count}.db"
                settings = Settings(_env_file=None, database_url=f"sqlite:///{database}", **options)
                upgrade(settings.database_url)
                sessions = make_session_factory(make_engine(settings.database_url))
            context = WebContext(config=settings.web_config(), engine=engine, sessions=sessions, slack=slack)
            server = WebServer(create_app(context), host="127.0.0.1", port=0).start()
            stack.callback(server.stop)
            return WebChat(host="127.0.0.1", port=server.port, context=context, database=database)

        yield make


@pytest.fixture
def make_standalone(tmp_path: Path, engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``itbot web`` as the command builds it (``bot.app.build_services``, ``web.standalone.StandaloneWeb``), on
    ``database`` (default: its own file), with ticket delivery when ``tickets=`` is set; stopped after the test.

    ``make_standalone(database=None, tickets_every_s=0.1, **settings)`` returns ``(WebChat, StandaloneWeb)``.
    """
    from bot.app import build_services
    from bot.settings import Settings
    from storage.migrate import upgrade
    from web.standalone import StandaloneWeb

    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    with ExitStack() as stack:
        def make(*, database: Path | None = None, tickets_every_s: float = 0.1, **options: Any):
            database = database or tmp_path / "standalone.db"
            settings = Settings(_env_file=None, database_url=f"sqlite:///{database}", **options)
            upgrade(settings.database_url)
            services = build_services(settings, engine=engine)
            served = StandaloneWeb(services, client=None, host="127.0.0.1", port=0,
                                   tickets_every_s=tickets_every_s).start()
            stack.callback(served.stop)
            # its context: the services (engine, sessions, settings) the routes and the ticket job share
            chat = WebChat(host="127.0.0.1", port=served.server.port, context=services, database=database)
            return chat, served

        yield make


@pytest.fixture
def web(make_web) -> WebChat:
    """The web chat with the default settings and no Slack."""
    return make_web()

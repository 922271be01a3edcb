"""Run the web app with uvicorn: in the foreground (``itbot web``) or on a thread beside the Slack app."""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import TYPE_CHECKING

from bot.errors import ConfigError

if TYPE_CHECKING:
    import uvicorn
    from fastapi import FastAPI

__all__ = ["WebServer"]

log = logging.getLogger(__name__)
START_TIMEOUT_S = 15.0


class WebServer:
    """uvicorn serving ``app`` on ``host:port`` (port 0: any free port, see :attr:`port` once started)."""

    def __init__(self, app: "FastAPI", *, host: str, port: int) -> None:
        import uvicorn

        self._config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                                      proxy_headers=True, forwarded_allow_ips="127.0.0.1", server_header=False,
                                      timeout_graceful_shutdown=5)
        self.server: "uvicorn.Server" = uvicorn.Server(self._config)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port it listens on."""
        return self.server.servers[0].sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://{self._config.host}:{self.port}"

    def start(self) -> "WebServer":
        """Serve on a daemon thread; return once it listens (a port in use is one :class:`ConfigError` line)."""
        self._thread = threading.Thread(target=self.server.run, name="itbot-web", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise ConfigError(f"ITBOT_WEB_PORT: cannot listen on {self._config.host}:{self._config.port} "
                                  "(in use, or not allowed): choose another port")
            time.sleep(0.02)
        log.info("web chat on %s", self.url)
        return self

    def run(self) -> None:
        """Serve in the foreground until SIGINT/SIGTERM, then exit normally.

        uvicorn finishes the requests in flight and then raises the signal again for the handler it found: a
        handler that does nothing makes that a normal exit (code 0), as ``itbot run``'s.
        """
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: None)
        try:
            self.server.run()
        except SystemExit:  # uvicorn exits when it cannot bind
            self.server.started = False
        if not self.server.started:
            raise ConfigError(f"ITBOT_WEB_PORT: cannot listen on {self._config.host}:{self._config.port} "
                              "(in use, or not allowed): choose another port")

    def stop(self) -> None:
        """Stop accepting, finish the requests in flight (5 s at most)."""
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

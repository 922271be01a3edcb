"""Prometheus metrics and health endpoints for ``itbot run``.

    GET /metrics   Prometheus text format
    GET /healthz   200 while the process is up
    GET /readyz    200 when every check passes, 503 with the failing checks otherwise:
                   database (a write, rolled back; for SQLite also a file system that
                   is not read-only), database_file (still the SQLite file opened),
                   disk (free space for it), slack (Socket Mode connected),
                   slack_api (the last Web API call was not refused for its token and
                   reached Slack), model (loaded, or not needed); no file checks on PostgreSQL
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["Metrics", "HealthServer"]

log = logging.getLogger(__name__)


class Metrics:
    """The bot's metrics, in their own registry (so tests and several apps do not collide)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("itbot_requests_total", "Questions answered, by source and action",
                                ["source", "action"], registry=self.registry)
        self.intents = Counter("itbot_intents_total", "Questions by routed intent", ["intent"], registry=self.registry)
        self.answer_seconds = Histogram("itbot_answer_seconds", "Time from taking a question to the final reply",
                                        buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30), registry=self.registry)
        self.engine_seconds = Histogram("itbot_engine_seconds", "Answer engine time per question (incl. model)",
                                        buckets=(0.002, 0.005, 0.01, 0.03, 0.1, 0.5, 1, 5, 30), registry=self.registry)
        self.errors = Counter("itbot_errors_total", "Unexpected errors in listeners and jobs", registry=self.registry)
        self.queue_depth = Gauge("itbot_queue_depth", "Jobs waiting or running on the worker", registry=self.registry)
        self.escalations = Counter("itbot_escalations_total", "Escalation transitions", ["status"],
                                   registry=self.registry)
        self.database_file_lost = Counter("itbot_database_file_lost_total", "The SQLite file was deleted or "
                                          "replaced under the running bot", ["problem"], registry=self.registry)
        self.ungrounded = Counter("itbot_answers_withheld_total", "Model answers withheld by the grounding guard "
                                  "(curated steps shown instead)", registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class HealthServer:
    """A small HTTP server on a thread for /metrics, /healthz and /readyz."""

    def __init__(self, metrics: Metrics, checks: dict[str, Callable[[], bool]], *, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server naming
                if self.path == "/metrics":
                    self._send(200, metrics.render(), CONTENT_TYPE_LATEST)
                elif self.path == "/healthz":
                    self._send(200, b'{"status": "ok"}', "application/json")
                elif self.path == "/readyz":
                    results = outer.readiness()
                    status = 200 if all(results.values()) else 503
                    self._send(status, json.dumps({"ready": status == 200, "checks": results}).encode(),
                               "application/json")
                else:
                    self._send(404, b"not found", "text/plain")

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:  # keep probes out of the log
                return

        self._checks = checks
        self._server = ThreadingHTTPServer((host, port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="itbot-health", daemon=True)

    def readiness(self) -> dict[str, bool]:
        results = {}
        for name, check in self._checks.items():
            try:
                results[name] = bool(check())
            except Exception:  # a failing check is "not ready", never a crash
                results[name] = False
        return results

    def start(self) -> "HealthServer":
        self._thread.start()
        log.info("metrics and health on http://%s:%d (/metrics, /healthz, /readyz)", *self._server.server_address)
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

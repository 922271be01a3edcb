"""Operations endpoints: /metrics, /healthz and /readyz."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from bot.metrics import HealthServer, Metrics


def _get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_health_metrics_and_readiness_report_what_is_wrong(monkeypatch):
    for name in ("HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    metrics = Metrics()
    metrics.requests.labels(source="dm", action="answer").inc(3)
    slack_up = {"value": False}

    def broken_database() -> bool:
        raise RuntimeError("database is locked")

    server = HealthServer(metrics, {"slack": lambda: slack_up["value"], "database": lambda: True}).start()
    try:
        assert _get(server.port, "/healthz")[0] == 200
        status, body = _get(server.port, "/readyz")
        assert status == 503 and json.loads(body)["checks"] == {"slack": False, "database": True}
        slack_up["value"] = True
        assert _get(server.port, "/readyz")[0] == 200
        status, body = _get(server.port, "/metrics")
        assert status == 200
        assert b'itbot_requests_total{action="answer",source="dm"} 3.0' in body
        assert _get(server.port, "/nope")[0] == 404
    finally:
        server.stop()
    failing = HealthServer(metrics, {"database": broken_database}).start()
    try:
        status, body = _get(failing.port, "/readyz")
        assert status == 503 and json.loads(body)["checks"]["database"] is False
    finally:
        failing.stop()

"""Operations endpoints: /metrics, /healthz and /readyz."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import pytest

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


# -- /readyz of the running bot: each thing every answer needs ------------------------------------------------


def readyz(bot) -> tuple[int, dict[str, bool]]:
    """GET /readyz of ``bot``, with the checks ``itbot run`` serves."""
    from bot.app import readiness_checks

    server = HealthServer(bot.services.metrics, readiness_checks(bot.services, bot.handler)).start()
    try:
        status, body = _get(server.port, "/readyz")
    finally:
        server.stop()
    return status, json.loads(body)["checks"]


def failing(checks: dict[str, bool]) -> set[str]:
    return {name for name, ok in checks.items() if not ok}


def test_readyz_checks_the_database_file_the_disk_and_the_slack_api_of_a_healthy_bot(bot):
    status, checks = readyz(bot)
    assert status == 200, checks
    assert set(checks) == {"database", "database_file", "disk", "slack", "slack_api", "model"}


@pytest.mark.parametrize("how", ["file system remounted read-only", "writes refused"])
def test_readyz_fails_on_a_read_only_database(bot, monkeypatch, how):
    import os

    if how == "file system remounted read-only":  # as ext4 does after a disk error; reads go on working
        real = os.statvfs

        def read_only(path):
            fields = list(real(path))
            fields[8] |= os.ST_RDONLY  # f_flag
            return os.statvfs_result(fields)

        monkeypatch.setattr(os, "statvfs", read_only)
    else:
        from sqlalchemy import event

        engine = bot.services.sessions.kw["bind"]
        event.listen(engine, "connect", lambda connection, _record: connection.execute("PRAGMA query_only = ON"))
        engine.dispose()  # the pooled connections reopen refusing writes
    status, checks = readyz(bot)
    assert status == 503 and failing(checks) == {"database"}


def test_readyz_fails_when_the_disk_is_nearly_full(bot, monkeypatch):
    import shutil

    real = shutil.disk_usage

    def nearly_full(path):
        usage = real(path)
        return usage._replace(used=usage.total - 50 * 1024 * 1024, free=50 * 1024 * 1024)

    monkeypatch.setattr(shutil, "disk_usage", nearly_full)
    status, checks = readyz(bot)
    assert status == 503 and failing(checks) == {"disk"}  # under the default ITBOT_MIN_FREE_DISK_MB=100


@pytest.mark.parametrize("problem", ["deleted", "replaced"])
def test_readyz_fails_when_the_database_file_is_deleted(bot, caplog, tmp_path, problem):
    import shutil

    path = bot.database_path
    if problem == "replaced":  # a restore over the running bot: same name, another file
        shutil.copy(path, tmp_path / "copy.db")
    path.unlink()
    if problem == "replaced":
        shutil.copy(tmp_path / "copy.db", path)
    _, event = bot.dm("my vpn keeps disconnecting")  # SQLite goes on with the unlinked file: it is answered
    bot.final_answer(event)
    lost = [r for r in caplog.records if r.levelname == "ERROR" and f"was {problem}" in r.getMessage()]
    assert len(lost) == 1 and str(path) in lost[0].getMessage()
    status, checks = readyz(bot)
    # the database check may fail too (a write on the lost file can fail), but nothing else does
    assert status == 503 and "database_file" in failing(checks) <= {"database", "database_file"}
    metric = f'itbot_database_file_lost_total{{problem="{problem}"}} 1.0'
    assert metric.encode() in bot.services.metrics.render()  # once, however often it is seen
    assert len([r for r in caplog.records if f"was {problem}" in r.getMessage()]) == 1
    assert path.exists() == (problem == "replaced")  # no new, empty file where the deleted one was


def revocable(fake) -> threading.Event:
    """Set the returned event to make Slack refuse the bot token on every Web API method, clear it to restore."""
    from tests.fakeslack import ApiError
    from tests.fakeslack.webapi import METHODS

    revoked = threading.Event()

    def guarded(method: str):
        def handler(state, params):
            if revoked.is_set():
                raise ApiError("token_revoked")
            return METHODS[method](state, params)
        return handler

    for method in METHODS:
        fake.set_handler(method, guarded(method))
    return revoked


def test_readyz_fails_after_a_revoked_token(bot):
    fake = bot.fake
    bot.ask("my printer is offline")  # a bot that has answered before: Bolt no longer asks auth.test
    assert readyz(bot)[0] == 200
    revoked = revocable(fake)
    revoked.set()
    bot.dm("my vpn keeps disconnecting")
    fake.wait_for_call("chat.postMessage", lambda call: call.response.get("error") == "token_revoked", timeout=10)
    bot.settle()
    status, checks = readyz(bot)
    assert status == 503 and failing(checks) == {"slack_api"}  # the Socket Mode connection is still up
    revoked.clear()
    assert readyz(bot)[0] == 200  # readiness comes back with Slack, without waiting for a question


def test_postgresql_gets_no_file_checks():
    from storage.db import make_engine
    from storage.dbfile import sqlite_path, watch_database_file

    assert sqlite_path("postgresql+psycopg://itbot:pw@db.example.com/itbot") is None
    assert watch_database_file(make_engine("postgresql+psycopg://itbot:pw@127.0.0.1:1/itbot")) is None

"""Anonymous use is safe: rate limits shared by replicas, size limits, security headers, no CORS by default, no
secret echoed or stored, and a reverse proxy's user header trusted only when configured."""

from __future__ import annotations

import http.client
import json

from sqlalchemy import select

from storage.models import Escalation, Message
from tests.slackbot import HELPDESK

SECRET = "Zq7!unique-secret"


def test_too_many_questions_get_429_with_retry_after_and_a_clear_message(make_web):
    web = make_web(web_rate_limit="2/minute")
    token = web.start()
    assert [web.ask(token, "printer jammed").status for _ in range(2)] == [200, 200]
    refused = web.ask(token, "printer jammed")
    assert refused.status == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    body = refused.json()
    assert body["error"].startswith("Too many questions from you. Please try again in ")
    assert body["retry_after_s"] == int(refused.headers["retry-after"])
    # a new conversation does not reset the count: it is per client, not per conversation
    assert web.ask(web.start(), "printer jammed").status == 429


def test_the_request_limit_is_shared_by_replicas_on_one_database(make_web, tmp_path):
    database = tmp_path / "shared.db"
    first = make_web(database=database, web_request_limit="3/minute")
    second = make_web(database=database, web_request_limit="3/minute")
    assert first.request("POST", "/api/conversations", {}).status == 201
    assert second.request("POST", "/api/conversations", {}).status == 201
    assert first.request("POST", "/api/conversations", {}).status == 201
    refused = second.request("POST", "/api/conversations", {})
    assert refused.status == 429 and "Too many requests" in refused.json()["error"]


def test_the_limiter_counts_fixed_windows_in_the_database(web):
    from storage.ratelimit import hit

    sessions = web.context.sessions
    with sessions.begin() as session:
        decisions = [hit(session, "ip:test", limit=2, period_s=60, now=600.0 + i) for i in range(3)]
    assert [d.allowed for d in decisions] == [True, True, False]
    assert decisions[2].retry_after_s == 58.0  # the window 600-660 ends 58 s after the third hit
    with sessions.begin() as session:  # the next window starts afresh
        assert hit(session, "ip:test", limit=2, period_s=60, now=660.0).allowed


def test_an_oversized_body_is_refused_with_413_declared_or_chunked(make_web):
    web = make_web(web_max_body_bytes=2048)
    token = web.start()
    big = json.dumps({"text": "x" * 3000}).encode()
    declared = web.request("POST", f"/api/conversations/{token}/messages", raw=big)
    assert declared.status == 413 and "at most 2048 bytes" in declared.json()["error"]
    assert "content-security-policy" in declared.headers
    connection = http.client.HTTPConnection(web.host, web.port, timeout=30)
    connection.putrequest("POST", f"/api/conversations/{token}/messages")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Transfer-Encoding", "chunked")
    connection.endheaders()
    for start in range(0, len(big), 1000):
        piece = big[start:start + 1000]
        connection.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
    connection.send(b"0\r\n\r\n")
    assert connection.getresponse().status == 413
    connection.close()


def test_every_response_carries_the_security_headers(web):
    for path in ("/", "/static/chat.js", "/api/openapi.json"):
        headers = web.request("GET", path).headers
        csp = headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        assert headers["x-content-type-options"] == "nosniff" and headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "no-referrer"
        assert "server" not in headers
    assert web.request("POST", "/api/conversations", {}).headers["cache-control"] == "no-store"


def test_cors_is_off_unless_origins_are_configured(make_web):
    origin = {"Origin": "https://evil.example.com"}
    closed = make_web()
    assert "access-control-allow-origin" not in closed.request("POST", "/api/conversations", {}, headers=origin).headers
    preflight = closed.request("OPTIONS", "/api/conversations", headers={
        **origin, "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in preflight.headers
    opened = make_web(web_cors_origins="https://intranet.example.com")
    allowed = opened.request("POST", "/api/conversations", {}, headers={"Origin": "https://intranet.example.com"})
    assert allowed.headers["access-control-allow-origin"] == "https://intranet.example.com"
    assert "access-control-allow-origin" not in opened.request("POST", "/api/conversations", {},
                                                                headers=origin).headers


def test_a_password_typed_into_the_chat_is_never_echoed_or_stored(make_web, fake):
    web = make_web(slack=fake.web_client(), escalation_channel=HELPDESK)
    token = web.start()
    reply = web.ask(token, f"outlook keeps failing, my password is {SECRET}")
    assert SECRET not in reply.body.decode()
    assert "never share passwords" in reply.event("answer")["text"]
    escalated = web.request("POST", f"/api/conversations/{token}/escalation",
                            {"contact": "alex@example.com", "details": f"my password is {SECRET} and it fails"})
    assert escalated.status == 200 and SECRET not in escalated.body.decode()
    with web.context.sessions.begin() as session:
        stored = [m.text for m in session.scalars(select(Message))]
        stored += [e.details or "" for e in session.scalars(select(Escalation))]
    assert stored and not [text for text in stored if SECRET in text]
    assert SECRET not in web.database.read_bytes().decode("utf-8", "replace")
    wal = web.database.with_name(web.database.name + "-wal")
    assert not wal.exists() or SECRET.encode() not in wal.read_bytes()
    assert [c.method for c in fake.calls() if SECRET in json.dumps(c.params)] == []


def test_the_proxy_user_header_is_ignored_unless_trusted(make_web):
    header = {"X-Forwarded-User": "alice@example.com"}
    anonymous = make_web()
    token = anonymous.start(headers=header)
    assert anonymous.ask(token, "printer jammed").status == 200  # the header named no one: nothing is bound to it
    trusting = make_web(web_trusted_user_header="X-Forwarded-User")
    token = trusting.start(headers=header)
    assert trusting.ask(token, "printer jammed", headers=header).status == 200
    assert trusting.ask(token, "printer jammed", headers={"X-Forwarded-User": "mallory@example.com"}).status == 404
    assert trusting.ask(token, "printer jammed").status == 404
    escalated = trusting.request("POST", f"/api/conversations/{token}/escalation", {"contact": "+44 20 7946 0958"},
                                 headers=header)
    assert escalated.status == 200
    with trusting.context.sessions.begin() as session:
        [escalation] = session.scalars(select(Escalation)).all()
        assert "signed in as alice@example.com" in escalation.details
        assert escalation.conversation.user_id == "sso:alice@example.com"

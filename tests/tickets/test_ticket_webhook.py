"""Tickets by signed webhook, against a real HTTP receiver on 127.0.0.1 that keeps each idempotency key."""

from __future__ import annotations

from datetime import timedelta

from pydantic import SecretStr

from storage import repository as repo
from storage.types import utcnow
from tests.tickets.conftest import PASSWORD, free_port, open_escalation
from tickets import Backoff, deliver_due
from tickets.webhook import WebhookSink, verify

SECRET = "whsec-unique-0123456789abcdef"
NOW_RETRY = Backoff(first_s=0)  # a failed ticket is due again at once: no sleeping in tests


def _sink(url: str, **options) -> WebhookSink:
    return WebhookSink(url=url, secret=SecretStr(SECRET), timeout_s=options.pop("timeout_s", 5), **options)


def test_a_ticket_is_posted_signed_with_its_key_and_its_reference_stored(sessions, receiver):
    escalation_id = open_escalation(sessions)
    (outcome,) = deliver_due(sessions, _sink(receiver.url + "/hooks/itbot"))
    assert (outcome.state.status, outcome.state.id, outcome.state.url) == (
        "created", "T-1", "https://tickets.example.com/T-1")
    (request,) = receiver.requests
    assert request.path == "/hooks/itbot"
    headers = request.headers
    assert headers["Content-Type"] == "application/json"
    assert headers["Idempotency-Key"].startswith(f"itbot-escalation-{escalation_id}-")
    assert headers["X-Itbot-Signature"].startswith("sha256=")
    assert verify(SECRET, request.body, headers["X-Itbot-Timestamp"], headers["X-Itbot-Signature"])
    assert not verify(SECRET, request.body + b" ", headers["X-Itbot-Timestamp"], headers["X-Itbot-Signature"])
    assert not verify("another-secret-0123456789", request.body, headers["X-Itbot-Timestamp"],
                      headers["X-Itbot-Signature"])
    body = request.json
    assert body["escalation_id"] == escalation_id and body["urgency"] == "high"
    assert body["idempotency_key"] == headers["Idempotency-Key"] and body["requester"] == "U0EMPLOYEE"
    assert "User: my vpn refuses my password" in body["transcript"] and "demo at 3pm" in body["transcript"]
    assert PASSWORD not in request.body.decode() and SECRET not in request.body.decode()


def test_a_503_is_retried_with_the_same_key_and_opens_one_ticket(sessions, receiver):
    open_escalation(sessions)
    receiver.enqueue(503)
    (first,) = deliver_due(sessions, _sink(receiver.url), backoff=NOW_RETRY)
    assert (first.state.status, first.state.attempts, first.state.error) == ("pending", 1, "HTTP 503")
    assert first.state.next_attempt_at is not None
    (second,) = deliver_due(sessions, _sink(receiver.url), backoff=NOW_RETRY)
    assert (second.state.status, second.state.id, second.state.attempts) == ("created", "T-1", 2)
    keys = [r.headers["Idempotency-Key"] for r in receiver.requests]
    assert len(keys) == 2 and keys[0] == keys[1]
    assert all(verify(SECRET, r.body, r.headers["X-Itbot-Timestamp"], r.headers["X-Itbot-Signature"])
               for r in receiver.requests)
    assert len(receiver.tickets) == 1


def test_a_duplicate_delivery_after_a_timeout_does_not_open_a_second_ticket(sessions, receiver):
    """The receiver stored the ticket but answered too late: the retry gets the same ticket back."""
    open_escalation(sessions)
    receiver.enqueue(201, delay_s=1.0)
    (first,) = deliver_due(sessions, _sink(receiver.url, timeout_s=0.3), backoff=NOW_RETRY)
    assert (first.state.status, first.state.error) == ("pending", "timed out")
    assert len(receiver.tickets) == 1  # it exists already
    (second,) = deliver_due(sessions, _sink(receiver.url), backoff=NOW_RETRY)
    assert (second.state.status, second.state.id) == ("created", "T-1")
    assert len(receiver.requests) == 2 and len(receiver.tickets) == 1


def test_a_400_fails_for_good_and_is_not_retried(sessions, receiver):
    open_escalation(sessions)
    receiver.enqueue(400)
    (outcome,) = deliver_due(sessions, _sink(receiver.url), backoff=NOW_RETRY)
    assert (outcome.state.status, outcome.state.error) == ("failed", "HTTP 400")
    assert deliver_due(sessions, _sink(receiver.url), now=lambda: utcnow() + timedelta(days=1)) == []
    assert len(receiver.requests) == 1


def test_429_and_an_unreachable_receiver_are_retried_later_with_a_growing_delay(sessions, receiver):
    open_escalation(sessions)
    receiver.enqueue(429)
    backoff = Backoff(first_s=30, most_s=3600)
    (first,) = deliver_due(sessions, _sink(receiver.url), backoff=backoff)
    assert (first.state.status, first.state.error) == ("pending", "HTTP 429")
    later = lambda: utcnow() + timedelta(seconds=31)  # noqa: E731
    (second,) = deliver_due(sessions, _sink(f"http://127.0.0.1:{free_port()}"), backoff=backoff, now=later)
    assert second.state.status == "pending" and second.state.error.startswith("unreachable")
    assert second.state.next_attempt_at - later() > timedelta(seconds=55)  # 30 s, then 60 s
    assert [backoff.delay(n).total_seconds() for n in (1, 2, 3, 20)] == [30, 60, 120, 3600]


def test_an_escalation_closed_before_its_first_attempt_gets_no_ticket_but_a_retried_one_still_does(sessions,
                                                                                                     receiver):
    first, second = open_escalation(sessions), open_escalation(sessions, key="1700000000.000200")
    receiver.enqueue(503)
    deliver_due(sessions, _sink(receiver.url), backoff=NOW_RETRY, only=second)  # tried once, failed
    with sessions.begin() as session:
        repo.resolve_escalation(session, first, agent_id="U0AGENT")
        repo.resolve_escalation(session, second, agent_id="U0AGENT")
    outcomes = deliver_due(sessions, _sink(receiver.url), backoff=NOW_RETRY)
    assert [(o.escalation_id, o.state.status) for o in outcomes] == [(second, "created")]


def test_a_ticket_being_sent_by_one_process_is_not_sent_by_another(sessions):
    escalation_id = open_escalation(sessions)
    now = utcnow()
    with sessions.begin() as session:
        assert repo.lease_ticket(session, escalation_id, now=now, until=now + timedelta(minutes=5))
        assert not repo.lease_ticket(session, escalation_id, now=now, until=now + timedelta(minutes=5))
        assert repo.due_tickets(session, now=now) == []
        assert [e.id for e in repo.due_tickets(session, now=now + timedelta(minutes=6))] == [escalation_id]


def test_a_sink_that_breaks_unexpectedly_is_logged_and_retried(sessions, caplog):
    class Broken:
        name = "broken"

        def open(self, ticket):
            raise RuntimeError("bug")

    open_escalation(sessions)
    (outcome,) = deliver_due(sessions, Broken(), backoff=NOW_RETRY)
    assert outcome.state.status == "pending" and outcome.state.error == "unexpected error, see the bot's log"
    assert "the broken integration failed unexpectedly" in caplog.text

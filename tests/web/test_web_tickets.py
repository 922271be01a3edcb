"""`itbot web` on its own sends the web chat's tickets (the real app and a real webhook receiver on 127.0.0.1), shows
the ticket on the page's updates, and shares the work with other processes on the same database without a second
ticket."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from storage.models import Escalation
from tests.tickets.receiver import Receiver

SECRET = "whsec-unique-0123456789abcdef"
PASSWORD = "Zq7!unique-secret"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()


def _tickets(receiver: Receiver) -> dict:
    return {"tickets": "webhook", "ticket_webhook_url": receiver.url + "/hooks/itbot",
            "ticket_webhook_secret": SECRET, "ticket_retry_s": 0}


def _escalate(chat, text: str = f"my vpn refuses my password {PASSWORD} since this morning") -> tuple[str, int]:
    token = chat.start()
    chat.ask(token, text).event("answer")
    response = chat.request("POST", f"/api/conversations/{token}/escalation",
                            {"contact": "alex@example.com", "urgency": "high"})
    assert response.status == 200, response.body
    return token, response.json()["escalation_id"]


def _wait(condition, *, timeout: float = 15, what: str):
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return found


def test_itbot_web_alone_sends_the_web_escalations_ticket_and_the_page_shows_it(make_standalone, receiver):
    chat, served = make_standalone(**_tickets(receiver))
    assert served.tickets is not None and served.tickets.running
    token, number = _escalate(chat)
    updates = f"/api/conversations/{token}/updates"
    [request] = _wait(lambda: receiver.requests, what="the ticket at the webhook receiver")
    body = request.json
    assert request.path == "/hooks/itbot" and body["escalation_id"] == number and body["urgency"] == "high"
    assert "my vpn refuses my password" in body["transcript"] and PASSWORD not in request.body.decode()
    found = _wait(lambda: (u := chat.request("GET", updates).json())["ticket_id"] and u, what="the ticket on the page")
    assert (found["escalation_id"], found["escalation_status"]) == (number, "open")
    assert (found["ticket_id"], found["ticket_url"]) == ("T-1", "https://tickets.example.com/T-1")
    again = chat.request("POST", f"/api/conversations/{token}/escalation", {"contact": "alex@example.com"}).json()
    assert (again["escalation_id"], again["ticket_id"]) == (number, "T-1")
    time.sleep(0.5)  # several more rounds of the job: the ticket is not sent again
    assert len(receiver.requests) == 1


def test_without_a_ticket_system_itbot_web_sends_nothing_and_shows_no_ticket(make_standalone):
    chat, served = make_standalone()
    assert served.tickets is None
    token, _number = _escalate(chat)
    found = chat.request("GET", f"/api/conversations/{token}/updates").json()
    assert found["escalation_status"] == "open" and found["ticket_id"] is None and found["ticket_url"] is None


def test_two_processes_on_one_database_never_send_a_ticket_twice(make_standalone, receiver, tmp_path):
    """An `itbot web` beside another one and an `itbot run` (its scheduler's job, called in a loop) on the same
    database, the ticket system slow to answer: the lease lets exactly one of them send the ticket, once."""
    from bot.helpdesk import deliver_tickets

    database = tmp_path / "shared.db"
    receiver.enqueue(201, delay_s=1.0)  # the first attempt is still in flight while the others look for due tickets
    first, _ = make_standalone(database=database, tickets_every_s=0.05, **_tickets(receiver))
    _second, other = make_standalone(database=database, tickets_every_s=0.05, **_tickets(receiver))
    stop = threading.Event()

    def itbot_run() -> None:
        while not stop.is_set():
            deliver_tickets(other.services, None)
            time.sleep(0.02)

    runner = threading.Thread(target=itbot_run, daemon=True)
    runner.start()
    try:
        _token, number = _escalate(first)
        _wait(lambda: receiver.requests, what="the ticket")
        _wait(lambda: _ticket_status(first, number) == "created", what="the ticket stored")
        time.sleep(1.0)  # every deliverer had many more turns
    finally:
        stop.set()
        runner.join(timeout=10)
    assert len(receiver.requests) == 1 and len(receiver.tickets) == 1


def _ticket_status(chat, number: int) -> str | None:
    with chat.context.sessions.begin() as session:
        return session.get(Escalation, number).ticket_status

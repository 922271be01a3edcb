"""`itbot web` as users run it: the real entry point in a subprocess."""

from __future__ import annotations

import json
import signal
import socket
import time
import urllib.request

from tests.conftest import run_itbot, start_itbot
from tests.tickets.receiver import Receiver


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_itbot_web_serves_the_page_answers_and_sends_the_ticket_then_stops_on_sigterm(tmp_path):
    port, receiver = _free_port(), Receiver().start()
    env = {"ITBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'itbot.db'}", "ITBOT_WEB_ORG_NAME": "Acme Corp",
           "ITBOT_TICKETS": "webhook", "ITBOT_TICKET_WEBHOOK_URL": receiver.url,
           "ITBOT_TICKET_WEBHOOK_SECRET": "whsec-unique-0123456789abcdef"}
    process = start_itbot("web", "--port", str(port), env=env)
    try:
        deadline, page = time.monotonic() + 300, None
        while page is None:
            assert process.poll() is None, process.stderr.read()
            assert time.monotonic() < deadline, "itbot web did not start"
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read().decode()
            except OSError:
                time.sleep(0.5)
        assert "Acme Corp" in page
        start = urllib.request.Request(f"http://127.0.0.1:{port}/api/conversations", data=b"{}", method="POST",
                                       headers={"Content-Type": "application/json"})
        token = json.loads(urllib.request.urlopen(start, timeout=10).read())["conversation"]
        ask = urllib.request.Request(f"http://127.0.0.1:{port}/api/conversations/{token}/messages", method="POST",
                                     data=json.dumps({"text": "printer jammed"}).encode(),
                                     headers={"Content-Type": "application/json"})
        assert "event: answer" in urllib.request.urlopen(ask, timeout=30).read().decode()
        # no `itbot run` anywhere: `itbot web` sends the escalation's ticket itself, within one round (15 s)
        human = urllib.request.Request(f"http://127.0.0.1:{port}/api/conversations/{token}/escalation",
                                       method="POST", data=json.dumps({"contact": "alex@example.com"}).encode(),
                                       headers={"Content-Type": "application/json"})
        number = json.loads(urllib.request.urlopen(human, timeout=10).read())["escalation_id"]
        deadline = time.monotonic() + 40
        while not receiver.requests:
            assert time.monotonic() < deadline, "itbot web did not send the ticket"
            time.sleep(0.2)
        assert receiver.requests[0].json["escalation_id"] == number
    finally:
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=30)
        receiver.stop()
    assert process.returncode == 0, err
    assert "Web chat on http://127.0.0.1:" in err and "SLACK_BOT_TOKEN is not set" in err
    assert "Tickets (ITBOT_TICKETS=webhook) are sent from here too" in err
    assert "Traceback" not in err


def test_bad_web_settings_and_a_busy_port_are_one_line(tmp_path):
    env = {"ITBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'itbot.db'}"}
    colour = run_itbot("web", env={**env, "ITBOT_WEB_PRIMARY_COLOUR": "blue"}, timeout=120)
    assert colour.returncode != 0
    assert colour.stderr.strip() == ("itbot: ITBOT_WEB_PRIMARY_COLOUR: 'blue' is not a colour such as '#1d4f91' "
                                     "(# and 3 or 6 hexadecimal digits)")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = run_itbot("web", "--port", str(busy.getsockname()[1]), env=env, timeout=300)
    assert taken.returncode != 0 and "Traceback" not in taken.stderr
    assert taken.stderr.strip().splitlines()[-1].startswith("itbot: ITBOT_WEB_PORT: cannot listen on 127.0.0.1:")

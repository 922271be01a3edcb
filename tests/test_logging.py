"""Secrets never reach a log line."""

from __future__ import annotations

import io
import logging

from bot.logs import configure_logging


def test_configured_tokens_and_pasted_passwords_are_masked_even_in_tracebacks():
    stream = io.StringIO()
    configure_logging(level="DEBUG", secrets=["xoxb-9999-8888-topsecretvalue", "dbpassw0rd"], stream=stream)
    log = logging.getLogger("itbot.test")
    log.info("connecting with %s", "xoxb-9999-8888-topsecretvalue")
    log.warning("user said: my password is Summer2024! please fix")
    try:
        raise RuntimeError("failed with postgresql://itbot:dbpassw0rd@db/itbot")
    except RuntimeError:
        log.exception("boom")
    log.info("app token xapp-1-A0123-4567-abcdef and an unrelated word")
    output = stream.getvalue()
    for secret in ("topsecretvalue", "Summer2024", "dbpassw0rd", "xapp-1-A0123"):
        assert secret not in output
    assert output.count("[REDACTED]") >= 4
    assert "unrelated word" in output


def test_json_logs_are_masked_too():
    import json

    stream = io.StringIO()
    configure_logging(json_lines=True, secrets=["xoxb-1-2-abcdefgh"], stream=stream)
    logging.getLogger("itbot").error("token xoxb-1-2-abcdefgh")
    record = json.loads(stream.getvalue().splitlines()[-1])
    assert record["message"] == "token [REDACTED]"
    assert record["level"] == "ERROR"


def test_bolts_raw_socket_mode_envelopes_never_reach_a_log_at_debug():
    from slack_bolt import App
    from slack_bolt.logger import get_bolt_logger

    stream = io.StringIO()
    configure_logging(level="DEBUG", stream=stream)
    bolt = get_bolt_logger(App)  # as the app does at start: the level becomes the root's (DEBUG)
    bolt.debug('on_message invoked: (message: {"text": "I typed hunter2 into the fake login page"})')
    bolt.info("A new session has been established")
    assert "hunter2" not in stream.getvalue()  # no pattern would have masked it: the raw text must not be logged
    assert "A new session has been established" in stream.getvalue()

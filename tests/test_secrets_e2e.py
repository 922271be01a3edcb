"""End to end: a secret a user types never leaves the process, whichever surface it goes through.

The real Bolt app over Socket Mode against the local fake Slack, with a real SQLite file; what is searched is
everything that leaves the process: every Web API call the fake recorded, the database file's bytes and the
log lines the configured handler writes.
"""

from __future__ import annotations

import io
import json

from bot import blocks
from tests.slackbot import AGENT, HELPDESK


def _calls_carrying(fake, secret: str) -> list[str]:
    """The Web API methods whose recorded parameters contain ``secret``."""
    return [call.method for call in fake.calls() if secret in json.dumps(call.params, ensure_ascii=False)]


def test_a_password_typed_into_the_escalation_form_never_reaches_the_helpdesk_channel(bot):
    secret = "Zq7!formSecret"
    _, event = bot.dm("my vpn won't connect at all")
    bot.final_answer(event)
    post = bot.escalate(event, details=f"my password is {secret} and the vpn still refuses it")
    assert secret not in json.dumps(post)
    assert "the vpn still refuses it" in json.dumps(post["blocks"])  # the prose around it is kept
    assert _calls_carrying(bot.fake, secret) == []

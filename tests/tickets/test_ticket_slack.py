"""End to end: the real Bolt app on the local fake Slack hands each escalation to a ticket system (the webhook
receiver on 127.0.0.1); the ticket's reference reaches the employee's thread, the helpdesk post and "My requests",
and a failing ticket system leaves the escalation in the channel, marked pending, until a retry lands."""

from __future__ import annotations

import json

from bot import blocks
from bot.helpdesk import deliver_tickets
from bot.listeners.home import home_for
from tests.slackbot import AGENT, HELPDESK

SECRET = "whsec-unique-0123456789abcdef"
LINK = "<https://tickets.example.com/T-1|T-1>"


def _bot(make_bot, receiver):
    return make_bot(tickets="webhook", ticket_webhook_url=receiver.url, ticket_webhook_secret=SECRET,
                    ticket_retry_s=0)


def _post_shows(bot, post: dict, *texts: str) -> dict:
    def current():
        message = bot.fake.message(HELPDESK, post["ts"])
        rendered = json.dumps(message["blocks"])
        return message if all(text in rendered for text in texts) else None

    return bot.fake.wait_until(current, timeout=10, what=f"the helpdesk post showing {texts}")


def _told(bot, event: dict) -> dict:
    return bot.fake.wait_until(lambda: [m for m in bot.thread(event) if "is now ticket" in m.get("text", "")],
                               timeout=10, what="the employee told the ticket")[0]


def test_an_escalation_becomes_a_ticket_shown_in_the_thread_the_helpdesk_post_and_my_requests(make_bot, receiver,
                                                                                             caplog):
    bot = _bot(make_bot, receiver)
    _, event = bot.dm("my vpn won't connect at all, error 412")
    bot.final_answer(event)
    post = bot.escalate(event, details="my password is Zq7!formSecret and I have a demo at 3pm")
    _post_shows(bot, post, f":ticket: Ticket {LINK}", "urgency *high*")
    told = _told(bot, event)
    assert "request #1 is now ticket" in told["text"] and LINK in told["text"]
    home = json.dumps(home_for(bot.services, bot.fake.workspace.user.id))
    assert f"Ticket {LINK}" in home
    (request,) = receiver.requests
    assert "error 412" in request.json["transcript"] and "demo at 3pm" in request.json["transcript"]
    assert "Zq7!formSecret" not in request.body.decode()
    assert SECRET not in caplog.text and SECRET not in json.dumps([c.params for c in bot.fake.calls()])
    assert SECRET.encode() not in bot.database_path.read_bytes()


def test_a_failing_ticket_system_keeps_the_escalation_in_the_channel_as_pending_until_a_retry_lands(make_bot,
                                                                                                   receiver):
    receiver.enqueue(503)
    bot = _bot(make_bot, receiver)
    _, event = bot.dm("my laptop won't boot, please get me a human")
    bot.final_answer(event)
    post = bot.escalate(event)
    assert "Ticket pending" in json.dumps(post["blocks"])  # shown from the first post
    _post_shows(bot, post, "Ticket pending (attempt 1 failed: HTTP 503")
    # the agents work it as ever: claimed, and the ticket line stays
    bot.fake.push(bot.fake.payloads.block_actions(action_id=blocks.ACTION_CLAIM, message=post, channel=HELPDESK,
                                                  user=AGENT.id))
    _post_shows(bot, post, "Claimed by", "Ticket pending (attempt 1 failed: HTTP 503")
    # the scheduler's next run (every few seconds, and at start-up) sends it again: now it lands
    (outcome,) = deliver_tickets(bot.services, bot.services_client)
    assert (outcome.state.status, outcome.state.attempts) == ("created", 2)
    _post_shows(bot, post, "Claimed by", f":ticket: Ticket {LINK}")
    _told(bot, event)
    keys = {r.headers["Idempotency-Key"] for r in receiver.requests}
    assert len(receiver.requests) == 2 and len(keys) == 1 and len(receiver.tickets) == 1


def test_the_scheduler_delivers_tickets_only_when_a_ticket_system_is_configured(make_bot, receiver):
    from bot.scheduler import build_scheduler

    bot = _bot(make_bot, receiver)
    assert "tickets" in {job.id for job in build_scheduler(bot.services, client=None).get_jobs()}
    bot.services.settings = bot.settings.model_copy(update={"tickets": "none"})
    assert "tickets" not in {job.id for job in build_scheduler(bot.services, client=None).get_jobs()}

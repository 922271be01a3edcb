"""The App Home tab: topic buttons that start a DM conversation, "My requests", and the agents' open queue.

Three tiers: the pure builder (:mod:`bot.home_tab`), the fake Slack's ``views.publish`` as Slack documents it, and
end to end, the real Bolt app over Socket Mode against the fake installed from manifest.yml.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone

import pytest
from slack_sdk.errors import SlackApiError
from sqlalchemy import select

from bot import blocks, home_tab
from bot.listeners.actions import NOT_AN_AGENT
from storage.models import Escalation, Message
from tests.fakeslack import FakeSlack
from tests.fakeslack.blockkit import view_errors
from tests.slackbot import AGENT, HELPDESK, MALLORY

AT = datetime(2026, 12, 5, 9, 30, tzinfo=timezone.utc)
SECRET = "Zq7!home-detail-secret"


def _request(n: int, status: str = "open", agent: str | None = None) -> home_tab.Request:
    return home_tab.Request(id=n, status=status, summary=f"User: my vpn <drops> #{n}\nBot: try this", created_at=AT,
                            user_id="U0FAKEUSR1", agent_id=agent, urgency="high")


def _text(view: dict | None) -> str:
    return json.dumps((view or {}).get("blocks", []), ensure_ascii=False)


# -- the builder --------------------------------------------------------------------------------------------------


def test_a_full_home_tab_stays_within_slacks_limits_and_shows_where_each_request_stands():
    requests = [_request(1, "open"), _request(2, "claimed", AGENT.id), _request(3, "resolved", AGENT.id),
                _request(4, "cancelled")] + [_request(n, "resolved", AGENT.id) for n in range(5, 30)]
    view = home_tab.home_view(helpdesk_name="Acme IT", topics=home_tab.home_topics(["vpn", "greeting", "printer"]),
                              requests=requests, queue=[_request(n) for n in range(100, 140)], notice="Hi <there>")
    assert view_errors(view) == [] and len(view["blocks"]) <= 100
    text = _text(view)
    assert "Claimed by <@U0AGENT001>" in text and "Resolved by <@U0AGENT001>" in text and "Open, waiting" in text
    assert "my vpn &lt;drops&gt; #1" in text and "<drops>" not in text and "Bot: try this" not in text
    assert "Hi &lt;there&gt;" in text and "<!date^1796463000^" in text
    assert text.count(home_tab.ACTION_ADD_DETAIL) == 2  # open and claimed only
    assert text.count(f'"{home_tab.ACTION_CLAIM}"') == home_tab.MAX_QUEUE
    topics = next(b for b in view["blocks"] if b.get("block_id") == "topics")["elements"]
    assert [b["value"] for b in topics] == ["vpn", "printer", "password_reset", "account_lockout", "mfa", "wifi",
                                            "email", "software_install"]
    assert len({b["action_id"] for b in topics}) == 8  # unique in their block, as Slack requires


def test_without_requests_the_home_tab_says_so_and_shows_no_queue_to_a_non_agent():
    view = home_tab.home_view(helpdesk_name="Acme IT", topics=home_tab.home_topics(), requests=[])
    assert home_tab.NO_REQUESTS in _text(view) and "Open queue" not in _text(view)
    assert "Nothing is waiting" in _text(home_tab.home_view(helpdesk_name="Acme IT", topics=[], requests=[], queue=[]))
    assert view_errors(home_tab.ask_modal("vpn")) == [] and view_errors(home_tab.detail_modal(_request(7))) == []


# -- the fake's views.publish ---------------------------------------------------------------------------------------


def test_the_fake_publishes_one_home_view_per_user_with_slacks_checks(fake):
    client, home = fake.web_client(), {"type": "home", "blocks": [{"type": "section",
                                                                   "text": {"type": "mrkdwn", "text": "hi"}}]}
    first = client.views_publish(user_id="U0FAKEUSR1", view=home)["view"]
    again = client.views_publish(user_id="U0FAKEUSR1", view={**home, "private_metadata": "2"}, hash=first["hash"])
    assert again["view"]["id"] == first["id"] and fake.home_view()["private_metadata"] == "2"
    assert fake.home_view(MALLORY.id) is None and fake.views() == []  # the modals' list is left alone

    def refused(**params) -> SlackApiError:
        with pytest.raises(SlackApiError) as raised:
            client.views_publish(**params)
        return raised.value

    assert refused(user_id="", view=home).response["error"] == "invalid_arguments"
    assert refused(user_id="U0FAKEUSR1", view=home, hash=first["hash"]).response["error"] == "hash_conflict"
    too_many = {"type": "home", "blocks": [{"type": "divider"}] * 101}
    assert "no more than 100 items allowed" in str(refused(user_id="U0FAKEUSR1", view=too_many).response)
    assert refused(user_id="U0FAKEUSR1", view={**home, "type": "modal"}).response["error"] == "invalid_arguments"


def test_an_app_without_a_home_tab_is_refused_not_enabled(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    with FakeSlack.start(home_tab=False) as fake, pytest.raises(SlackApiError) as raised:
        fake.web_client().views_publish(user_id="U0FAKEUSR1", view={"type": "home", "blocks": []})
    assert raised.value.response["error"] == "not_enabled"


# -- end to end -----------------------------------------------------------------------------------------------------


def home(bot, user: str | None = None, *, showing: str = "", opened: bool = True) -> dict:
    """``user`` opens the Home tab (when ``opened``); returns it once it shows ``showing``."""
    fake = bot.fake
    if opened:
        fake.wait_for_ack(fake.open_home(user))
    return fake.wait_until(lambda: showing in _text(fake.home_view(user)) and fake.home_view(user), timeout=10,
                           what=f"the Home tab showing {showing!r}")


def click_home(bot, view: dict, action_id: str, user: str | None = None, **kwargs) -> str:
    envelope = bot.fake.push(bot.fake.payloads.block_actions(action_id=action_id, view=view, user=user, **kwargs))
    bot.fake.wait_for_ack(envelope)
    return envelope


def new_modal(bot, before: int) -> dict:
    return bot.fake.wait_until(lambda: bot.fake.views()[before:], timeout=10, what="the form")[0]


def escalated(bot) -> tuple[dict, dict]:
    """The default user asks about the VPN and escalates; returns the question event and the helpdesk post."""
    event, _answer = bot.ask("my vpn won't connect at all, error 412")
    return event, bot.escalate(event)


def test_a_topic_on_the_home_tab_opens_a_form_whose_description_is_answered_in_my_dm(bot):
    fake = bot.fake
    view = home(bot, showing="My requests")
    assert home_tab.NO_REQUESTS in _text(view) and "Open queue" not in _text(view)  # not an agent
    topics = next(b for b in view["blocks"] if b.get("block_id") == "topics")["elements"]
    assert len(topics) == home_tab.MAX_TOPICS and "VPN" in [b["text"]["text"] for b in topics]
    vpn = next(b for b in topics if b["value"] == "vpn")

    click_home(bot, view, vpn["action_id"])
    form = new_modal(bot, 0)
    assert form["callback_id"] == home_tab.VIEW_ASK
    empty = fake.push(fake.payloads.view_submission(form, values={"problem": "  "}))
    assert fake.wait_for_ack(empty).payload == {"response_action": "errors",
                                                "errors": {"problem": "Please describe the problem in a few words."}}
    fake.wait_for_ack(fake.push(fake.payloads.view_submission(form, values={"problem": "it drops every ten minutes"})))

    dm = fake.dm_channel()
    quote = fake.wait_until(lambda: fake.messages(dm), timeout=10, what="the quoted question")[0]
    assert quote["text"] == ":speech_balloon: You asked about *VPN*:\n> it drops every ten minutes"
    answer = bot.final_answer({"channel": dm, "ts": quote["ts"]})
    assert "VPN" in answer["text"] and blocks.ACTION_HUMAN in json.dumps(answer["blocks"])
    assert not fake.warnings


def test_a_form_question_is_stored_before_its_ack_and_answered_once_after_the_process_died(bot, monkeypatch):
    """The Home tab's form is a door like a DM: what was typed survives a crash right after Slack's ack."""
    from bot.inbox import HOST
    from bot.listeners.intake import recover
    from storage.models import PendingQuestion

    fake = bot.fake
    view = home(bot, showing="My requests")
    topics = next(b for b in view["blocks"] if b.get("block_id") == "topics")["elements"]
    click_home(bot, view, next(b for b in topics if b["value"] == "printer")["action_id"])
    form = new_modal(bot, 0)
    with monkeypatch.context() as patch:  # the process dies right after the ack: its job never runs
        lost = []
        patch.setattr(bot.services.worker, "submit", lambda job, on_error=None: lost.append(job))
        fake.wait_for_ack(fake.push(fake.payloads.view_submission(form, values={"problem": "jammed on floor 2"})))
    assert len(lost) == 1 and not fake.messages(fake.dm_channel())
    with bot.services.sessions.begin() as session:
        [row] = session.scalars(select(PendingQuestion)).all()
        assert (row.text, row.topic, row.finished_at) == ("jammed on floor 2", "printer", None)
        row.holder = f"{HOST}:999999:gone"  # a process of this host that no longer runs

    assert recover(bot.services, bot.services_client) == 1
    bot.settle()
    [quote] = fake.messages(fake.dm_channel())
    assert quote["text"] == ":speech_balloon: You asked about *Printers*:\n> jammed on floor 2"
    answer = bot.final_answer({"channel": fake.dm_channel(), "ts": quote["ts"]})
    assert "printer" in answer["text"].lower()
    assert recover(bot.services, bot.services_client) == 0


def test_an_escalation_shows_open_then_claimed_from_the_agent_queue_then_resolved(bot):
    fake = bot.fake
    event, post = escalated(bot)
    mine = home(bot, showing="Open, waiting for an agent", opened=False)  # refreshed when it was created
    assert "*#1*" in _text(mine) and "error 412" in _text(mine) and home_tab.NO_REQUESTS not in _text(mine)

    pushed = home(bot, AGENT.id, showing="*#1* from <@U0FAKEUSR1>", opened=False)  # agents' queues were refreshed
    assert "Open queue" in _text(pushed)
    queue = home(bot, AGENT.id, showing="Open queue")
    assert "*#1* from <@U0FAKEUSR1>" in _text(queue)
    click_home(bot, queue, home_tab.ACTION_CLAIM, AGENT.id, block_id="queue_1")
    home(bot, showing="Claimed by <@U0AGENT001>", opened=False)
    after = home(bot, AGENT.id, showing="You claimed request #1", opened=False)
    assert "Nothing is waiting" in _text(after)
    assert "Claimed by <@U0AGENT001>" in json.dumps(fake.message(HELPDESK, post["ts"])["blocks"])  # same as Claim
    assert any("<@U0AGENT001> from the helpdesk has picked up your request #1" in m["text"]
               for m in bot.thread(event))

    bot.click(blocks.ACTION_RESOLVE, fake.message(HELPDESK, post["ts"]), AGENT.id, channel=HELPDESK)
    resolved = home(bot, showing="Resolved by <@U0AGENT001>", opened=False)
    assert home_tab.ACTION_ADD_DETAIL not in _text(resolved)
    assert not fake.warnings


def test_a_non_agent_cannot_claim_from_a_home_tab(bot):
    fake = bot.fake
    escalated(bot)
    queue = home(bot, AGENT.id, showing="Open queue")
    click_home(bot, queue, home_tab.ACTION_CLAIM, MALLORY.id, block_id="queue_1")  # a replayed payload
    refused = home(bot, MALLORY.id, showing=NOT_AN_AGENT, opened=False)
    assert "Open queue" not in _text(refused)
    bot.settle()
    with bot.services.sessions() as session:
        assert str(session.scalars(select(Escalation.status)).one()) == "open"
    assert fake.calls("chat.update") == []


def test_add_detail_relays_my_text_redacted_to_the_helpdesk_thread(bot):
    fake = bot.fake
    _event, post = escalated(bot)
    view = home(bot, showing="Add detail")
    before = len(fake.views())
    click_home(bot, view, home_tab.ACTION_ADD_DETAIL, block_id="request_1")
    form = new_modal(bot, before)
    assert form["callback_id"] == home_tab.VIEW_DETAIL
    typed = f"it is error 809 now, my password is {SECRET}"
    fake.wait_for_ack(fake.push(fake.payloads.view_submission(form, values={"detail": typed})))

    relayed = fake.wait_until(lambda: fake.messages(HELPDESK, thread_ts=post["ts"])[1:], timeout=10,
                              what="the detail in the helpdesk thread")[0]
    assert relayed["text"].startswith("*<@U0FAKEUSR1>:* it is error 809 now") and "[REDACTED]" in relayed["text"]
    home(bot, showing="Added to request #1", opened=False)
    bot.settle()
    assert [c.method for c in fake.calls() if SECRET in json.dumps(c.params, ensure_ascii=False)] == []
    with bot.services.sessions() as session:
        stored = [m.text for m in session.scalars(select(Message).where(Message.role == "user"))]
    assert any("error 809" in t for t in stored) and not [t for t in stored if SECRET in t]

    forged = fake.push(fake.payloads.block_actions(action_id=home_tab.ACTION_ADD_DETAIL, view=view, user=MALLORY.id,
                                                   block_id="request_1"))
    fake.wait_for_ack(forged)
    home(bot, MALLORY.id, showing="closed or not yours", opened=False)  # not her request: no form
    assert len(fake.views()) == before + 1


def test_a_home_tab_slack_refuses_never_breaks_the_escalation(bot, caplog):
    fake = bot.fake
    fake.fail_next("views.publish", error="not_enabled", times=10)
    with caplog.at_level(logging.WARNING, logger="bot.listeners.home"):
        event, post = escalated(bot)
        bot.click(blocks.ACTION_CLAIM, post, AGENT.id, channel=HELPDESK)
        fake.wait_until(lambda: any("picked up your request" in m["text"] for m in bot.thread(event)), timeout=10,
                        what="the user told of the claim")
        fake.wait_for_call("views.publish", count=3, timeout=10)  # created: the user; claimed: the user, the agent
        bot.settle()
    assert fake.home_view() is None and fake.home_view(AGENT.id) is None
    assert "Home tab not published: not_enabled" in caplog.text
    assert [m for m in bot.thread(event) if "something went wrong" in m["text"]] == []  # no apology


def test_the_queue_lists_the_oldest_open_requests_first(bot):
    with bot.services.sessions.begin() as session:
        from storage import repository as repo

        for n, minutes in enumerate((5, 30, 10)):
            conversation, _ = repo.open_conversation(session, team_id="T1", channel_id="D1", thread_ts=f"{n}.0",
                                                     user_id=f"U0USER{n}", source="dm")
            escalation, _ = repo.open_escalation(session, conversation_id=conversation.id, summary=f"User: q{n}")
            escalation.created_at = AT - timedelta(minutes=minutes)
        session.flush()
        assert [e.summary for e in repo.list_open_queue(session)] == ["User: q1", "User: q2", "User: q0"]
        assert [e.summary for e in repo.list_escalations_for_user(session, "U0USER2")] == ["User: q2"]
        assert repo.add_escalation_detail(session, 1, user_id="U0USER2", text="not mine") is None

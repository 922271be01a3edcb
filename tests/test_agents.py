"""Agents as a Slack user group: the helpdesk team manages who may claim and resolve in Slack itself."""

from __future__ import annotations

import pytest

from bot import blocks
from bot.agents import AgentGroup
from bot.errors import ConfigError
from bot.settings import load_settings
from storage.models import Escalation
from tests.fakeslack import User
from tests.slackbot import HELPDESK, MALLORY

GROUP = "S0HELPDESK"
EVE = User(id="U0EVE00001", name="eve", real_name="Eve Agent", email="eve@example.com")


def test_a_member_of_the_agent_group_claims_and_anyone_else_is_refused(make_bot):
    bot = make_bot(agent_user_ids=(), agent_usergroup=GROUP)
    bot.fake.add_user(EVE)
    bot.fake.set_usergroup(GROUP, [EVE.id])
    event, _ = bot.ask("my vpn won't connect at all, error 412")
    post = bot.escalate(event)

    bot.click(blocks.ACTION_CLAIM, post, MALLORY.id, channel=HELPDESK)
    bot.fake.wait_until(lambda: bot.fake.ephemeral_messages(user=MALLORY.id), timeout=10, what="a refusal")
    bot.click(blocks.ACTION_CLAIM, post, EVE.id, channel=HELPDESK)

    def claimed_by():
        with bot.services.sessions() as session:
            return session.get(Escalation, 1).claimed_by
    assert bot.fake.wait_until(claimed_by, timeout=10, what="Eve's claim") == EVE.id
    assert "Only helpdesk agents" in bot.fake.ephemeral_messages(user=MALLORY.id)[0]["text"]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now




def test_group_membership_is_cached_then_refreshed(fake):
    fake.set_usergroup(GROUP, [EVE.id])
    clock = Clock()
    group = AgentGroup(fake.web_client(), GROUP, ttl_s=300, clock=clock)
    assert EVE.id in group and MALLORY.id not in group
    assert len(fake.calls("usergroups.users.list")) == 1  # one read for both checks

    fake.set_usergroup(GROUP, [MALLORY.id])  # Eve leaves the team, Mallory joins
    clock.now = 299
    assert EVE.id in group
    clock.now = 301
    assert EVE.id not in group and MALLORY.id in group
    assert len(fake.calls("usergroups.users.list")) == 2


def test_when_slack_cannot_say_the_last_known_members_stay_and_strangers_are_refused(fake):
    fake.set_usergroup(GROUP, [EVE.id])
    clock = Clock()
    group = AgentGroup(fake.web_client(), GROUP, ttl_s=60, clock=clock)
    assert EVE.id in group
    fake.fail_next("usergroups.users.list", error="ratelimited")
    clock.now = 61
    assert EVE.id in group and MALLORY.id not in group

    unknown = AgentGroup(fake.web_client(), "S0NOSUCH01", clock=clock)
    assert EVE.id not in unknown


def test_a_user_group_handle_instead_of_an_id_is_a_one_line_error(monkeypatch):
    monkeypatch.setenv("ITBOT_AGENT_USERGROUP", "@helpdesk")
    with pytest.raises(ConfigError, match="ITBOT_AGENT_USERGROUP.*user group id such as 'S012ABCDEF'"):
        load_settings()

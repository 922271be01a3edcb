"""Known issues (outage notices): an agent posts one from Slack or the CLI, and the answers on its topic start with it.

Pure units (parsing, topics, the builder), then end to end through the real Bolt app on the local fake Slack, the
web chat and the ``itbot known`` command line.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from bot import blocks, conversation
from bot.listeners.commands import known_command
from tests.conftest import run_itbot
from tests.slackbot import AGENT, MALLORY
from tests.web.conftest import make_web  # noqa: F401 - the web chat fixture, for the web test below

OUTAGE = "VPN is down in Berlin, fix expected 14:00"
SECRET = "Zq7!known-issue-secret"
VPN_QUESTION = "my vpn keeps disconnecting"
PRINTER_QUESTION = "the printer on floor 2 says offline"


# --- pure units ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("known", ("list",)),
    ("known issues", ("list",)),
    ("known clear vpn", ("clear", "vpn")),
    ("known clear #3", ("clear", "#3")),
    (f"known vpn: {OUTAGE}", ("post", "vpn", OUTAGE, None)),
    ("known vpn for 2h: VPN is down", ("post", "vpn", "VPN is down", timedelta(hours=2))),
    ("known vpn: VPN is down (for 90m)", ("post", "vpn", "VPN is down", timedelta(minutes=90))),
    ("known printer: closed for 2 people", ("post", "printer", "closed for 2 people", None)),
    ("known bug in Teams?", None),  # no colon: a question
    ("my vpn is down", None),
])
def test_the_known_subcommand_is_parsed(text, expected):
    assert known_command(text) == expected


def test_topics_are_built_in_names_labels_or_article_topics_and_a_typo_gets_close_matches():
    assert conversation.known_topic("VPN") == ("vpn", [])
    assert conversation.known_topic("Wi-Fi") == ("wifi", [])
    assert conversation.known_topic("password reset") == ("password_reset", [])
    assert conversation.known_topic("Virtual  Desktop", ["virtual desktop"]) == ("virtual desktop", [])
    topic, close = conversation.known_topic("vnp")
    assert topic is None and "vpn" in close
    assert conversation.known_duration("2h") == timedelta(hours=2)
    assert conversation.known_duration("30 days") == timedelta(days=conversation.MAX_KNOWN_ISSUE_DAYS)
    assert conversation.known_duration("soon") is None and conversation.known_duration("0h") is None


def test_the_notice_goes_above_the_answer_and_its_text_is_escaped():
    at = datetime(2026, 12, 5, 10, 42, tzinfo=UTC)
    line = blocks.known_issue_line(text="<!channel> VPN down & out", created_at=at, created_by=AGENT.id)
    assert "&lt;!channel&gt; VPN down &amp; out" in line and "10:42 UTC" in line and f"<@{AGENT.id}>" in line
    messages = blocks.answer_messages(answer="1. Restart the client.", action="answer", sources=[], choices=[],
                                      message_id=1, conversation_id=1, known_issue=line)
    assert messages[0]["blocks"][0]["text"]["text"] == line
    assert "Restart the client" in messages[0]["blocks"][1]["text"]["text"]
    assert "posted by alice" in blocks.known_issue_line(text="x", created_at=datetime.now(UTC), created_by="cli:alice")


# --- Slack, end to end --------------------------------------------------------------------------------------------

def slash(bot, text: str, user: str) -> dict:
    """``user`` runs ``/itsupport <text>``; the ephemeral reply they get."""
    fake = bot.fake
    before = len(fake.calls("chat.postEphemeral"))
    fake.push(fake.payloads.slash_command(text, user=user))
    return fake.wait_until(lambda: [c for c in fake.calls("chat.postEphemeral")[before:] if c.params["user"] == user],
                           timeout=20, what="the ephemeral reply")[0].params


def first_block(answer: dict) -> str:
    return json.dumps(answer["blocks"][0])


def test_an_agents_known_issue_tops_vpn_answers_only_until_it_is_cleared(bot):
    posted = slash(bot, f"known vpn: {OUTAGE}", AGENT.id)
    assert "Known issue #1 posted" in json.dumps(posted)

    _, vpn = bot.ask(VPN_QUESTION)
    assert "Known issue" in first_block(vpn) and OUTAGE in first_block(vpn) and f"<@{AGENT.id}>" in first_block(vpn)
    assert "Known issue" not in json.dumps(vpn["blocks"][1:])  # the steps follow, below the notice
    assert len(vpn["blocks"]) > 1
    _, printer = bot.ask(PRINTER_QUESTION)
    assert "Known issue" not in json.dumps(printer)

    listed = slash(bot, "known", MALLORY.id)  # anyone may list
    assert OUTAGE in json.dumps(listed) and "#1" in json.dumps(listed)

    cleared = slash(bot, "known clear vpn", AGENT.id)
    assert "Cleared known issue #1" in json.dumps(cleared)
    _, again = bot.ask("vpn won't connect")
    assert "Known issue" not in json.dumps(again)
    assert "No known issues" in json.dumps(slash(bot, "known", MALLORY.id))


STATUS = "C0ITSTATUS"


def test_the_status_channel_hears_of_an_outage_when_it_is_posted_and_when_it_is_cleared(make_bot):
    bot = make_bot(status_channel=STATUS)
    fake = bot.fake
    slash(bot, f"known vpn: VPN is down in Berlin, the temporary password is {SECRET}", AGENT.id)
    [posted] = fake.wait_until(lambda: fake.messages(STATUS), timeout=10, what="the announcement")
    assert "Known issue: VPN" in posted["text"] and "VPN is down in Berlin" in posted["text"]
    assert SECRET not in json.dumps(posted)  # as stored: redacted
    assert f"<@{AGENT.id}>" in posted["text"]
    slash(bot, "known clear vpn", AGENT.id)
    ended = fake.wait_until(lambda: fake.messages(STATUS)[1:], timeout=10, what="the all-clear")
    assert "Resolved: VPN" in ended[0]["text"]
    slash(bot, "known clear vpn", AGENT.id)  # nothing in force: nothing to announce
    assert len(fake.messages(STATUS)) == 2


def test_a_status_channel_the_bot_is_not_in_still_stores_the_notice_and_tells_the_agent(make_bot):
    bot = make_bot(status_channel=STATUS)
    bot.fake.leave_channel(STATUS)
    reply = slash(bot, f"known vpn: {OUTAGE}", AGENT.id)
    assert "Known issue #1 posted" in json.dumps(reply)
    assert "Not announced" in json.dumps(reply) and "not_in_channel" in json.dumps(reply)
    assert [n.topic for n in conversation.current_known_issues(bot.services.sessions)] == ["vpn"]
    _, vpn = bot.ask(VPN_QUESTION)
    assert OUTAGE in first_block(vpn)


def test_without_a_status_channel_nothing_is_announced(bot):
    before = len(bot.fake.calls("chat.postMessage"))
    slash(bot, f"known vpn: {OUTAGE}", AGENT.id)
    assert not [c for c in bot.fake.calls("chat.postMessage")[before:] if c.params.get("channel") == STATUS]


def test_a_non_agent_cannot_post_or_clear_a_known_issue(bot):
    refused = slash(bot, f"known vpn: {OUTAGE}", MALLORY.id)
    assert "Only helpdesk agents" in json.dumps(refused)
    with bot.services.sessions.begin() as session:
        from storage import repository as repo

        assert repo.active_known_issues(session) == []
    conversation.post_known_issue(bot.services.sessions, topic="vpn", text=OUTAGE, created_by=AGENT.id)
    assert "Only helpdesk agents" in json.dumps(slash(bot, "known clear vpn", MALLORY.id))
    assert len(conversation.current_known_issues(bot.services.sessions)) == 1


def test_an_unknown_topic_is_one_line_with_close_matches(bot):
    reply = slash(bot, f"known vnp: {OUTAGE}", AGENT.id)
    assert "Unknown topic" in json.dumps(reply) and "`vpn`" in json.dumps(reply)
    assert conversation.current_known_issues(bot.services.sessions) == []


def test_a_known_issue_expires_by_itself(bot, monkeypatch):
    slash(bot, f"known vpn for 2h: {OUTAGE}", AGENT.id)
    [notice] = conversation.current_known_issues(bot.services.sessions)
    assert notice.expires_at - notice.created_at == timedelta(hours=2)
    later = datetime.now(UTC) + timedelta(hours=2, minutes=1)
    monkeypatch.setattr(conversation, "utcnow", lambda: later)  # the cached notice ends on time too
    assert conversation.current_known_issues(bot.services.sessions) == []
    _, answer = bot.ask(VPN_QUESTION)
    assert "Known issue" not in json.dumps(answer)


def test_a_known_issue_without_a_duration_lasts_eight_hours():
    from storage.db import make_engine, make_session_factory
    from storage.migrate import upgrade

    url = "sqlite:///known.db"  # the test's own folder (clean_env changes into tmp_path)
    upgrade(url)
    sessions = make_session_factory(make_engine(url))
    notice = conversation.post_known_issue(sessions, topic="email", text="Outlook is slow", created_by=AGENT.id)
    assert notice.expires_at - notice.created_at == timedelta(hours=conversation.KNOWN_ISSUE_HOURS)
    replaced = conversation.post_known_issue(sessions, topic="email", text="Outlook is down", created_by=AGENT.id)
    assert [n.id for n in conversation.current_known_issues(sessions)] == [replaced.id]  # one per topic


def test_a_password_in_the_notice_is_masked_everywhere(bot):
    slash(bot, f"known vpn: VPN down, use the temporary password: {SECRET}", AGENT.id)
    _, answer = bot.ask(VPN_QUESTION)
    assert "Known issue" in first_block(answer) and SECRET not in json.dumps(answer)
    assert SECRET not in json.dumps(slash(bot, "known", AGENT.id))


def test_the_home_tab_shows_the_known_issues_at_the_top(bot):
    slash(bot, f"known vpn: {OUTAGE}", AGENT.id)
    fake = bot.fake
    fake.wait_for_ack(fake.open_home())
    view = fake.wait_until(lambda: fake.home_view(), timeout=10, what="the Home tab")
    assert view["blocks"][0]["text"]["text"] == "Known issues"
    assert OUTAGE in json.dumps(view["blocks"][1]) and "VPN" in json.dumps(view["blocks"][1])
    slash(bot, "known clear 1", AGENT.id)
    fake.wait_for_ack(fake.open_home())
    fake.wait_until(lambda: "Known issues" not in json.dumps(fake.home_view()), timeout=10, what="a fresh Home tab")


def test_an_open_home_tab_shows_a_new_known_issue_without_being_reopened(bot):
    fake = bot.fake
    fake.wait_for_ack(fake.open_home())  # the employee looked at their Home tab earlier
    fake.wait_until(lambda: fake.home_view(), timeout=10, what="the Home tab")
    slash(bot, f"known vpn: {OUTAGE}", AGENT.id)
    fake.wait_until(lambda: OUTAGE in json.dumps(fake.home_view()), timeout=10, what="the outage on the open tab")
    fake.wait_until(lambda: OUTAGE in json.dumps(fake.home_view(AGENT.id)), timeout=10, what="the agent's tab")
    slash(bot, "known clear vpn", AGENT.id)
    fake.wait_until(lambda: OUTAGE not in json.dumps(fake.home_view()), timeout=10, what="the tab without it")


# --- the web chat -------------------------------------------------------------------------------------------------

def test_the_web_chat_answer_carries_the_known_issue(request):
    web = request.getfixturevalue("make_web")()
    conversation.post_known_issue(web.context.sessions, topic="vpn", text=f"{OUTAGE} password: {SECRET}",
                                  created_by=AGENT.id)
    token = web.start()
    issue = web.ask(token, VPN_QUESTION).event("answer")["known_issue"]
    assert issue["topic"] == "vpn" and OUTAGE in issue["text"] and SECRET not in issue["text"]
    assert "created_by" not in issue  # a Slack user id means nothing to a web visitor
    assert web.ask(token, PRINTER_QUESTION).event("answer")["known_issue"] is None
    assert "known_issue" in web.request("GET", "/static/chat.js").body.decode()


# --- the command line ---------------------------------------------------------------------------------------------

def test_the_cli_posts_lists_and_clears_known_issues(tmp_path):
    env = {"ITBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}
    posted = run_itbot("known", "add", "vpn", f"{OUTAGE}, password: {SECRET}", "--for", "2h", "--by", "alice",
                       env=env)
    assert posted.returncode == 0, posted.stderr
    assert "#1" in posted.stdout and OUTAGE in posted.stdout and SECRET not in posted.stdout
    listed = run_itbot("known", "list", env=env)
    assert "vpn" in listed.stdout and "alice" in listed.stdout
    typo = run_itbot("known", "add", "vnp", "down", env=env)
    assert typo.returncode == 1 and "vpn" in typo.stderr and "Traceback" not in typo.stderr
    assert run_itbot("known", "clear", "1", env=env).returncode == 0
    assert run_itbot("known", "list", env=env).stdout == ""
    assert run_itbot("known", "clear", "vpn", env=env).returncode == 1

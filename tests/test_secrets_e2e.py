"""End to end: a secret a user types never leaves the process, whichever surface it goes through.

The real Bolt app over Socket Mode against the local fake Slack, with a real SQLite file; what is searched is
everything that leaves the process: every Web API call the fake recorded and every ack, the database file's
bytes, the log lines the configured handler writes (and the raw log records), the exported files and metrics.
"""

from __future__ import annotations

import json


from bot import blocks
from tests.slackbot import AGENT, HELPDESK

DIGEST = "C0DIGEST01"
# One secret in the classic phrasing and one in a newer one, typed on every surface.
CLASSIC, NEWER = "Zq7!unique-secret", "Kx9#unique-second"
SECRETS = (CLASSIC, NEWER)


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


def _typed(prefix: str) -> str:
    """A message about ``prefix`` that also shares both secrets."""
    return f"{prefix}, my password is {CLASSIC} and {NEWER} is my old password"


def _leaks(places: dict[str, str]) -> list[str]:
    """``"place: secret"`` for every secret found in a place."""
    return [f"{place}: {secret}" for place, text in places.items() for secret in SECRETS if secret in text]


def _database_bytes(bot) -> str:
    """The SQLite file and its write-ahead log, as bytes on disk (what a backup copies)."""
    path = bot.database_path
    parts = (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-journal"))
    return b"".join(part.read_bytes() for part in parts if part.exists()).decode("utf-8", "replace")


def test_a_secret_sent_through_every_surface_is_never_posted_stored_logged_or_exported(make_bot, project_logs,
                                                                                       caplog, tmp_path):
    from bot.kb_export import export_drafts
    from bot.nightly import run_nightly
    from storage.privacy import export_user

    bot = make_bot(digest_channel=DIGEST)
    fake, user = bot.fake, bot.fake.workspace.user.id
    # a DM question and its "Not helpful" (for the digest); a slash command, answered privately; an @mention
    event, answer = bot.ask(_typed("my vpn won't connect at all, error 412"))
    bot.click(blocks.ACTION_FEEDBACK, bot.button_message(event, blocks.ACTION_FEEDBACK), feedback="negative")
    fake.push(fake.payloads.slash_command(_typed("outlook keeps asking for my password")))
    fake.wait_until(lambda: len(fake.ephemeral_messages(user=user)) >= 2, timeout=20, what="the private answers")
    mention = fake.payloads.app_mention(_typed("my outlook keeps asking for my password"), channel="C0GENERAL")
    fake.push(mention)  # an @mention in a channel, answered in its thread
    bot.final_answer(mention["payload"]["event"])
    # the escalation form (its modal shows the conversation), then /itsupport status lists the request
    post = bot.escalate(event, details=_typed("I have a demo at 3pm"))
    fake.push(fake.payloads.slash_command("status"))
    fake.wait_until(lambda: any("#1" in json.dumps(m) for m in fake.ephemeral_messages(user=user)), timeout=20,
                    what="the status")
    # claimed; the user and the agent write to each other through the relay; resolved and rated
    bot.click(blocks.ACTION_CLAIM, post, AGENT.id, channel=HELPDESK)
    fake.wait_until(lambda: any("picked up your request" in m.get("text", "") for m in bot.thread(event)),
                    timeout=10, what="the claim")
    bot.dm(_typed("it says error 412 again"), thread_ts=event["ts"])
    fake.wait_until(lambda: any("error 412 again" in m.get("text", "")
                                for m in fake.messages(HELPDESK, thread_ts=post["ts"])), timeout=10,
                    what="the relay to the agent")
    fake.push(fake.payloads.message(_typed("I reset your profile"), user=AGENT.id, channel=HELPDESK,
                                    thread_ts=post["ts"]))
    fake.wait_until(lambda: any("reset your profile" in m.get("text", "") for m in bot.thread(event)), timeout=10,
                    what="the relay to the user")
    bot.click(blocks.ACTION_RESOLVE, fake.message(HELPDESK, post["ts"]), AGENT.id, channel=HELPDESK)
    rating = fake.wait_until(lambda: [m for m in bot.thread(event) if "How did we do" in m.get("text", "")],
                             timeout=10, what="the rating prompt")[0]
    bot.click(f"{blocks.ACTION_RATE}_4", rating)
    # the agent's answer saved as a KB draft and exported; the nightly digest; the user's data export
    bot.click(blocks.ACTION_KB_DRAFT, fake.message(HELPDESK, post["ts"]), AGENT.id, channel=HELPDESK)
    fake.wait_until(lambda: any("Saved as KB draft" in m["text"] for m in fake.ephemeral_messages(user=AGENT.id)),
                    timeout=10, what="the draft")
    exported = export_drafts(bot.services.sessions, tmp_path / "kb")
    questions = tmp_path / "questions.jsonl"
    questions.write_text('{"text": "wifi is down", "intent": "wifi", "action": "answer"}\n', encoding="utf-8")
    assert run_nightly(bot.services, bot.services_client, force=True, questions=questions).posted_ts
    with bot.services.sessions() as session:
        personal = json.dumps(export_user(session, user), ensure_ascii=False, default=str)
    bot.settle()

    # it went through: the user was warned, and each surface has the words around the secret
    assert "never share passwords" in answer["text"]
    assert "demo at 3pm" in json.dumps(fake.message(HELPDESK, post["ts"])["blocks"])
    assert len(exported) == 1 and "reset your profile" in exported[0].read_text(encoding="utf-8")
    assert "my vpn" in json.dumps(fake.messages(DIGEST), ensure_ascii=False)
    assert "[REDACTED]" in personal

    calls = {f"{call.method} #{number}": json.dumps(call.params, ensure_ascii=False)
             for number, call in enumerate(fake.calls())}
    acks = {f"ack {ack.envelope_id}": json.dumps(ack.payload, ensure_ascii=False) for ack in fake.acks()}
    records = {f"log record #{number} ({record.name})": f"{record.getMessage()} {record.exc_text or ''}"
               for number, record in enumerate(caplog.records)}
    assert _leaks({**calls, **acks}) == []
    assert _leaks({"database file": _database_bytes(bot)}) == []
    assert _leaks({"log lines": project_logs[0].getvalue() + project_logs[1].getvalue(), **records}) == []
    assert _leaks({"KB export": exported[0].read_text(encoding="utf-8"), "user export": personal,
                   "metrics": bot.services.metrics.render().decode()}) == []

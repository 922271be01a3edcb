"""The `itbot` command line, through its real entry point in a subprocess."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_itbot

SUBCOMMANDS = ("run", "chat", "ask", "eval", "train", "model", "db", "digest")


def test_help_lists_every_subcommand():
    result = run_itbot("--help")
    assert result.returncode == 0
    for name in SUBCOMMANDS:
        assert name in result.stdout


@pytest.mark.parametrize("command", [["run"], ["chat"], ["ask"], ["eval"], ["train"], ["model", "fetch"],
                                     ["db", "upgrade"], ["digest"]])
def test_each_subcommand_has_help(command):
    result = run_itbot(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout


def test_piped_chat_prints_a_reply_and_exits_cleanly():
    result = run_itbot("chat", stdin="hi\n")
    assert result.returncode == 0, result.stderr
    assert "I can help with" in result.stdout
    assert "Traceback" not in result.stderr


def test_forgotten_password_gets_numbered_reset_steps_with_the_portal(tmp_path):
    (tmp_path / ".env").write_text("ITBOT_PORTAL_URL=https://password.acme.test\n", encoding="utf-8")
    result = run_itbot("chat", stdin="i forgot my pasword\n", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "1. " in result.stdout and "2. " in result.stdout
    assert "https://password.acme.test" in result.stdout


def test_ask_json_prints_one_object_with_the_documented_fields():
    result = run_itbot("ask", "my vpn keeps disconnecting", "--json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert set(payload) == {"text", "intent", "confidence", "action", "answer", "sources", "article", "latency_ms"}
    assert payload["intent"] == "vpn" and payload["action"] == "answer"
    assert payload["sources"]


@pytest.mark.parametrize(
    ("env", "command", "expected"),
    [
        ({"SLACK_BOT_TOKEN": "xoxp-user"}, ["chat"], "SLACK_BOT_TOKEN: must be a bot token"),
        ({"SLACK_APP_TOKEN": "oops"}, ["ask", "hi"], "SLACK_APP_TOKEN: must be an app-level token"),
        ({"ITBOT_DIGEST_CRON": "0 0 0"}, ["ask", "hi"], "ITBOT_DIGEST_CRON:"),
        ({}, ["run"], "SLACK_BOT_TOKEN is not set"),
        ({"SLACK_BOT_TOKEN": "xoxb-1-2-3", "SLACK_APP_TOKEN": "xapp-1-2-3",
          "ITBOT_DATABASE_URL": "sqlite:////nonexistent-dir/sub/itbot.db"}, ["run"], "ITBOT_DATABASE_URL: cannot reach"),
        ({"ITBOT_DATABASE_URL": "postgresql+psycopg://itbot:pw@127.0.0.1:1/itbot"}, ["db", "upgrade"],
         "ITBOT_DATABASE_URL: cannot reach the database at postgresql+psycopg://itbot:***@127.0.0.1:1/itbot"),
        ({"ITBOT_ANSWER_MODE": "llm", "ITBOT_MODEL": "/nonexistent/model"}, ["ask", "hi"],
         "ITBOT_MODEL: no model folder at /nonexistent/model"),
        ({"ITBOT_ANSWER_MODE": "hybrid", "ITBOT_MODEL": "HuggingFaceTB/SmolLM2-135M-Instruct",
          "ITBOT_CACHE_DIR": "/nonexistent-cache"}, ["ask", "hi"], "run `itbot model fetch`"),
    ],
)
def test_misconfiguration_gives_one_line_and_exit_code_2(env, command, expected):
    result = run_itbot(*command, env=env)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert expected in lines[0]
    assert "Traceback" not in result.stderr


def test_db_upgrade_creates_the_schema_and_is_safe_to_repeat(tmp_path):
    import sqlite3

    env = {"ITBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'itbot.db'}"}
    first, again = run_itbot("db", "upgrade", env=env), run_itbot("db", "upgrade", env=env)
    assert first.returncode == 0 and again.returncode == 0, (first.stderr, again.stderr)
    assert "is at revision" in again.stdout
    tables = {row[0] for row in sqlite3.connect(tmp_path / "itbot.db").execute("select name from sqlite_master")}
    assert {"conversations", "messages", "escalations"} <= tables


def test_purge_and_export_user_through_the_cli(tmp_path):
    from datetime import datetime, timedelta, timezone

    from storage import repository as repo
    from storage.db import make_engine, make_session_factory
    from storage.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'itbot.db'}"
    upgrade(url)
    sessions = make_session_factory(make_engine(url))
    with sessions.begin() as session:
        conversation = repo.get_or_create_conversation(session, team_id="T1", channel_id="D1", thread_ts="1.0",
                                                       user_id="U0ALICE01", source="dm")
        repo.append_message(session, conversation_id=conversation.id, role="user",
                            text="my password is Summer2024! and vpn fails")
        conversation.updated_at = datetime.now(timezone.utc) - timedelta(days=120)
    exported = run_itbot("db", "export-user", "U0ALICE01", env={"ITBOT_DATABASE_URL": url})
    assert exported.returncode == 0, exported.stderr
    assert "vpn fails" in exported.stdout and "Summer2024" not in exported.stdout
    bad = run_itbot("db", "purge", "--older-than", "soon", env={"ITBOT_DATABASE_URL": url})
    assert bad.returncode == 1 and "use a duration such as 90d" in bad.stderr
    purged = run_itbot("db", "purge", "--older-than", "90d", env={"ITBOT_DATABASE_URL": url})
    assert purged.returncode == 0, purged.stderr
    assert "1 conversations" in purged.stdout
    assert "vpn fails" not in run_itbot("db", "export-user", "U0ALICE01", env={"ITBOT_DATABASE_URL": url}).stdout


def test_eval_rejects_a_malformed_queries_file(tmp_path):
    queries = tmp_path / "q.jsonl"
    queries.write_text('{"text": "hi"}\nnot json\n', encoding="utf-8")
    result = run_itbot("eval", "--queries", str(queries))
    assert result.returncode == 1
    assert "q.jsonl:2: not valid JSON" in result.stderr

"""Settings: defaults that work, one clear line for every mistake a newcomer can make."""

from __future__ import annotations

from pathlib import Path

import pytest
from dotenv import dotenv_values

from bot.errors import ConfigError
from bot.settings import RateLimit, Settings, load_settings

REPO = Path(__file__).resolve().parents[1]


def test_defaults_work_without_any_configuration():
    settings = load_settings()
    assert settings.database_url == "sqlite:///itbot.db"
    assert settings.answer_mode == "kb"
    assert settings.rate_limit == RateLimit(count=10, period_s=60)
    assert settings.agent_user_ids == ()
    assert not settings.slack_configured
    assert settings.org_profile().portal_url == "https://selfservice.example.com"


def test_environment_and_dotenv_are_read(monkeypatch, tmp_path):
    (tmp_path / ".env").write_text("ITBOT_HELPDESK_NAME=Acme IT\nITBOT_RATE_LIMIT=5/hour\n", encoding="utf-8")
    monkeypatch.setenv("ITBOT_AGENT_USER_IDS", "U012ABCDEF, U034GHIJKL")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1-2-abc")
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-1-A1-xyz")
    monkeypatch.setenv("SLACK_API_URL", "http://127.0.0.1:8999/api")
    settings = load_settings()
    assert settings.org_profile().helpdesk_name == "Acme IT"
    assert settings.rate_limit == RateLimit(count=5, period_s=3600)
    assert settings.agent_user_ids == ("U012ABCDEF", "U034GHIJKL")
    assert settings.slack_configured
    assert settings.slack_api_url == "http://127.0.0.1:8999/api/"


def test_environment_wins_over_dotenv(monkeypatch, tmp_path):
    (tmp_path / ".env").write_text("ITBOT_ANSWER_MODE=llm\n", encoding="utf-8")
    monkeypatch.setenv("ITBOT_ANSWER_MODE", "hybrid")
    assert load_settings().answer_mode == "hybrid"


def test_env_example_documents_every_setting_with_its_default():
    documented = dotenv_values(REPO / ".env.example")
    from bot.settings import env_name

    expected = {env_name(name) for name in Settings.model_fields}
    commented = (REPO / ".env.example").read_text(encoding="utf-8")
    missing = [name for name in expected if name not in documented and f"# {name}=" not in commented]
    assert not missing, f".env.example lacks {missing}"
    defaults = Settings(_env_file=None)
    for name, value in documented.items():
        field = name.removeprefix("ITBOT_").lower() if name.startswith("ITBOT_") else name.lower()
        current = getattr(defaults, field)
        if value in ("", None):
            assert current in (None, ()), name
        else:
            parsed = Settings(_env_file=None, **{field: value})
            assert getattr(parsed, field) == current, f"{name} default in .env.example differs from the code"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("SLACK_BOT_TOKEN", "xoxp-123-user-token", "SLACK_BOT_TOKEN: must be a bot token starting with 'xoxb-'"),
        ("SLACK_APP_TOKEN", "xoxb-wrong-kind", "SLACK_APP_TOKEN: must be an app-level token starting with 'xapp-'"),
        ("SLACK_API_URL", "slack.com/api", "SLACK_API_URL: 'slack.com/api' is not an http(s) URL"),
        ("ITBOT_DATABASE_URL", "itbot.db", "ITBOT_DATABASE_URL: 'itbot.db' is not a database URL"),
        ("ITBOT_DIGEST_CRON", "every night", "ITBOT_DIGEST_CRON: 'every night' is not a cron expression"),
        ("ITBOT_DIGEST_CRON", "0 25 * * *", "ITBOT_DIGEST_CRON: '0 25 * * *' is not a cron expression"),
        ("ITBOT_TIMEZONE", "Mars/Olympus", "ITBOT_TIMEZONE: 'Mars/Olympus' is not an IANA time zone"),
        ("ITBOT_RATE_LIMIT", "lots", "ITBOT_RATE_LIMIT: 'lots' is not a rate such as '10/minute'"),
        ("ITBOT_AGENT_USER_IDS", "U012ABCDEF,alice", "ITBOT_AGENT_USER_IDS: 'alice' is not a Slack user id"),
        ("ITBOT_ANSWER_MODE", "magic", "ITBOT_ANSWER_MODE: Input should be 'kb', 'llm' or 'hybrid'"),
        ("ITBOT_QUANTIZATION", "3bit", "ITBOT_QUANTIZATION: Input should be '4bit', '8bit' or 'none'"),
    ],
)
def test_each_bad_setting_gives_one_clear_line(monkeypatch, variable, value, expected):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith(expected)
    assert "\n" not in message


def test_missing_slack_tokens_say_where_to_find_them():
    with pytest.raises(ConfigError, match="SLACK_BOT_TOKEN is not set.*OAuth & Permissions"):
        load_settings().require_slack()
    with pytest.raises(ConfigError, match="SLACK_APP_TOKEN is not set.*App-Level Tokens"):
        load_settings(slack_bot_token="xoxb-1").require_slack()


def test_tokens_are_secret_in_repr_and_listed_for_masking():
    settings = load_settings(slack_bot_token="xoxb-111-222-secretvalue", slack_app_token="xapp-1-A-othersecret",
                             database_url="postgresql+psycopg://itbot:hunter2hunter@db/itbot")
    assert "secretvalue" not in repr(settings)
    assert set(settings.secrets()) == {"xoxb-111-222-secretvalue", "xapp-1-A-othersecret", "hunter2hunter"}


def test_rate_limit_round_trips():
    assert str(RateLimit.parse("10/minute")) == "10/minute"
    assert RateLimit.parse(" 3 / seconds ") == RateLimit(count=3, period_s=1)
    with pytest.raises(ValueError):
        RateLimit.parse("0/minute")

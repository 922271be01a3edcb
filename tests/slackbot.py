"""The real itbot Slack app wired to a local fake Slack, for end-to-end tests.

Tests get it through the ``bot`` and ``make_bot`` fixtures of ``tests/conftest.py``::

    def test_a_dm_is_answered(bot):
        _, event = bot.dm("my vpn keeps dropping")
        assert "Sources:" in json.dumps(bot.final_answer(event)["blocks"])
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.fakeslack import FakeSlack, User

if TYPE_CHECKING:
    from slack_bolt.adapter.socket_mode.websocket_client import SocketModeHandler

    from bot.services import Services
    from bot.settings import Settings
    from answers.engine import AnswerEngine

__all__ = ["HELPDESK", "AGENT", "MALLORY", "MANIFEST", "Bot", "manifest_grants", "running_bot", "llm_mode"]

HELPDESK = "C0HELPDESK"
AGENT = User(id="U0AGENT001", name="ada", real_name="Ada Agent", email="ada@example.com")
MALLORY = User(id="U0MALLORY1", name="mallory", real_name="Mallory", email="mallory@example.com")
THINKING = "Looking into it"
MANIFEST = Path(__file__).resolve().parents[1] / "manifest.yml"


def manifest_grants() -> tuple[list[str], list[str]]:
    """The bot scopes and bot events ``manifest.yml`` asks for: what the app has once installed from it."""
    import yaml

    manifest = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    return manifest["oauth_config"]["scopes"]["bot"], manifest["settings"]["event_subscriptions"]["bot_events"]


@dataclass
class Bot:
    """The running app, its services and the fake Slack it talks to."""

    fake: FakeSlack
    services: "Services"
    settings: "Settings"
    handler: "SocketModeHandler"

    @property
    def services_client(self):
        return self.fake.web_client()

    @property
    def database_path(self) -> Path:
        """The SQLite file the bot stores into."""
        return Path(self.settings.database_url.removeprefix("sqlite:///"))

    def dm(self, text: str, **kwargs: Any) -> tuple[str, dict]:
        """The user sends a DM; returns the envelope id and the event."""
        envelope = self.fake.payloads.message(text, **kwargs)
        return self.fake.push(envelope), envelope["payload"]["event"]

    def thread(self, event: dict) -> list[dict]:
        return self.fake.messages(event["channel"], thread_ts=event.get("thread_ts") or event["ts"])

    def replies(self, event: dict) -> list[dict]:
        """The bot's messages in the event's thread, placeholders included."""
        bot_user = self.fake.workspace.bot_user_id
        return [m for m in self.thread(event)[1:] if m.get("bot_id") or m.get("user") == bot_user]

    def final_answer(self, event: dict, *, count: int = 1, timeout: float = 20) -> dict:
        """Wait until the bot's reply in the event's thread is final: not the placeholder, nor a streamed or
        edited preview that the final answer has yet to replace."""
        def in_progress(message: dict) -> bool:
            if THINKING in message.get("text", "") or message.get("blocks"):
                return THINKING in message.get("text", "")
            streamed = self.fake.stream(event["channel"], message["ts"]) is not None
            return streamed or message.get("text", "").endswith(" …")

        def ready():
            final = [m for m in self.replies(event) if not in_progress(m)]
            return final[count - 1] if len(final) >= count else None

        return self.fake.wait_until(ready, timeout=timeout, what="the bot's answer")

    def ask(self, text: str, user: str | None = None) -> tuple[dict, dict]:
        """``user`` (the default user when None) DMs ``text``; returns the event and the bot's final answer."""
        _, event = self.dm(text, **({"user": user} if user else {}))
        return event, self.final_answer(event)

    def click(self, action_id: str, message: dict, user: str | None = None, **kwargs: Any) -> str:
        """``user`` clicks ``action_id`` on ``message`` (``value=`` forges its value); returns the acked envelope."""
        envelope = self.fake.push(self.fake.payloads.block_actions(action_id=action_id, message=message, user=user,
                                                                   **kwargs))
        self.fake.wait_for_ack(envelope)
        return envelope

    def escalate(self, event: dict, user: str | None = None, details: str | None = None) -> dict:
        """``user`` presses "Talk to a human" under their answer and sends the form; returns the helpdesk post."""
        from bot import blocks

        fake = self.fake
        posts, views = len(fake.messages(HELPDESK)), len(fake.views())
        self.click(blocks.ACTION_HUMAN, self.button_message(event, blocks.ACTION_HUMAN), user)
        view = fake.wait_until(lambda: fake.views()[views:], timeout=10, what="the escalation form")[0]
        fake.push(fake.payloads.view_submission(view, values={"urgency": "high", "details": details}, user=user))
        post = fake.wait_until(lambda: fake.messages(HELPDESK)[posts:], timeout=20, what="the escalation post")[0]
        fake.wait_until(lambda: any("passed this to the helpdesk" in m.get("text", "") for m in self.thread(event)),
                        timeout=10, what="the user told")  # the post's ts is stored by then
        return post

    def settle(self, timeout: float = 30) -> None:
        """Wait until the worker is idle (work already handed to it is done)."""
        self.fake.wait_until(lambda: self.services.worker.in_flight == 0, timeout=timeout,
                             what="the worker to finish")

    def button_message(self, event: dict, action_id: str) -> dict:
        """The newest message of the event's thread that holds the button ``action_id``."""
        for message in reversed(self.thread(event)):
            if action_id in json.dumps(message.get("blocks", [])):
                return message
        raise AssertionError(f"no message with {action_id}")


@contextmanager
def running_bot(database: Path, engine: "AnswerEngine", *, handler_kwargs: dict[str, Any] | None = None,
                **settings: Any) -> Iterator[Bot]:
    """Start a fake Slack and the real app on it (SQLite file ``database``); everything stops on exit.

    ``settings`` override the defaults: helpdesk channel ``HELPDESK``, agent ``AGENT``, 5 questions a minute.
    Proxy variables must be unset (the ``make_bot`` fixture does it). The fake grants the app what ``manifest.yml``
    asks for, no more: a call beyond its scopes fails with ``missing_scope``, an event beyond its subscriptions
    cannot be pushed.
    """
    from bot.app import build_app, build_services, socket_mode_handler
    from bot.settings import Settings
    from storage.migrate import upgrade

    scopes, bot_events = manifest_grants()
    with FakeSlack.start(scopes=scopes, bot_events=bot_events) as fake:
        fake.add_user(AGENT)
        fake.add_user(MALLORY)
        options = {"escalation_channel": HELPDESK, "agent_user_ids": (AGENT.id,), "rate_limit": "5/minute", **settings}
        config = Settings(_env_file=None, slack_bot_token=fake.bot_token, slack_app_token=fake.app_token,
                          slack_api_url=fake.api_url, database_url=f"sqlite:///{database}", **options)
        upgrade(config.database_url)
        services = build_services(config, engine=engine)
        try:
            app = build_app(config, services)
            handler = socket_mode_handler(app, fake.app_token, **(handler_kwargs or {}))
            with fake.connect(app, handler=handler):
                yield Bot(fake=fake, services=services, settings=config, handler=handler)
        finally:
            services.worker.shutdown()


def llm_mode(engine: "AnswerEngine", generator: Any) -> "AnswerEngine":
    """The engine in llm mode with ``generator`` (a stand-in for the model service), on the same KB and router."""
    from answers.engine import AnswerEngine

    return AnswerEngine(kb=engine.kb, router=engine.router, org=engine.org, answer_mode="llm", generator=generator,
                        clarify_threshold=engine.clarify_threshold, hybrid_min_retrieval=engine.hybrid_min_retrieval)

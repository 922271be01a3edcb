"""Fixtures for the fake's own tests: a running fake, and a Bolt app wired to it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from slack_bolt import App

from . import FakeSlack

PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSlack]:
    """A fresh fake Slack; proxies scrubbed because slack_sdk would route 127.0.0.1 through them."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    with FakeSlack.start() as running:
        yield running


@pytest.fixture
def app(fake: FakeSlack) -> App:
    """A real Bolt app whose WebClient talks to the fake (its auth.test included)."""
    return App(client=fake.web_client())

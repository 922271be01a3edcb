"""Ticket fixtures: a migrated SQLite file, an escalation with a transcript, and real servers on 127.0.0.1 (an
aiosmtpd SMTP server, and the webhook receiver of ``receiver.py``)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from storage import repository as repo
from storage.db import make_engine, make_session_factory
from storage.migrate import upgrade
from tests.tickets.receiver import Receiver

PASSWORD = "Zq7!unique-secret"  # typed by the employee: redacted before it is stored, so never in a ticket


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    """Sessions on a SQLite file migrated to the head revision (0006 adds the ticket columns)."""
    url = f"sqlite:///{tmp_path / 'itbot.db'}"
    upgrade(url)
    engine = make_engine(url)
    yield make_session_factory(engine)
    engine.dispose()


def open_escalation(sessions: sessionmaker[Session], *, user: str = "U0EMPLOYEE", key: str = "1700000000.000100",
                    urgency: str = "high") -> int:
    """A DM conversation (a question with a password in it, the bot's answer) handed to the helpdesk; its id."""
    with sessions.begin() as session:
        conversation, _ = repo.open_conversation(session, team_id="T1", channel_id="D1", thread_ts=key, user_id=user,
                                                 source="dm")
        repo.append_message(session, conversation_id=conversation.id, role="user",
                            text=f"my vpn refuses my password {PASSWORD} since this morning")
        repo.append_message(session, conversation_id=conversation.id, role="assistant", text="Try reconnecting.")
        escalation, _ = repo.open_escalation(session, conversation_id=conversation.id, summary="User: vpn",
                                             urgency=urgency, details="I have a demo at 3pm")
        return escalation.id


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Mailbox:
    """What the SMTP server accepted: (envelope sender, recipients, raw message) per email."""

    def __init__(self) -> None:
        self.mails: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 (aiosmtpd's name)
        self.mails.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 OK"


@pytest.fixture
def smtp_server() -> Iterator[tuple[int, Mailbox]]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1, without STARTTLS; (port, mailbox)."""
    from aiosmtpd.controller import Controller

    mailbox, port = Mailbox(), free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield port, mailbox
    controller.stop()

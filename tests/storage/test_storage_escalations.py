"""Escalations: one owner per claim, one consistent state, the conversation handed over and back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from storage.models import Conversation, ConversationState, Escalation, EscalationStatus
from storage.repository import (active_escalation, cancel_escalation, claim_escalation, find_escalation_by_message,
                                get_or_create_conversation, list_open_escalations_for_user, open_escalation,
                                rate_escalation, resolve_escalation, set_escalation_message)


@pytest.fixture
def escalation(session_factory, conversation) -> Escalation:
    """An open escalation of U_ALICE's conversation."""
    with session_factory.begin() as session:
        escalation, created = open_escalation(session, conversation_id=conversation.id, urgency="high",
                                              summary="VPN drops every 5 minutes", details="since Monday")
        assert created
        return escalation


def _load(session_factory, escalation_id: int) -> Escalation:
    with session_factory() as session:
        return session.get(Escalation, escalation_id)


def test_escalating_stores_a_redacted_summary_and_waits_for_an_agent(session_factory, conversation):
    with session_factory.begin() as session:
        escalation, created = open_escalation(
            session, conversation_id=conversation.id, summary="User says: my password is Summer2024!",
            details="token xoxb-123456789-abcdefgh pasted", urgency="critical")
    stored = _load(session_factory, escalation.id)
    assert created and stored.status == EscalationStatus.OPEN and stored.urgency == "critical"
    assert "Summer2024!" not in stored.summary and "xoxb-123456789" not in stored.details
    assert stored.conversation.user_id == "U_ALICE"  # loaded with it, usable after the session closed
    assert stored.created_at.tzinfo is UTC and stored.claimed_by is None


def test_a_double_submitted_escalation_pages_the_team_once(session_factory, conversation, race):
    def submit(index: int) -> tuple[int, bool]:
        with session_factory.begin() as session:
            escalation, created = open_escalation(session, conversation_id=conversation.id, summary=f"try {index}")
            return escalation.id, created

    outcomes = race(8, submit)
    assert len({escalation_id for escalation_id, _ in outcomes}) == 1
    assert sum(created for _, created in outcomes) == 1
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Escalation)) == 1


def test_escalating_a_missing_conversation_is_an_error_not_a_duplicate(session_factory):
    with session_factory() as session, pytest.raises(Exception, match="(?i)foreign key"):
        open_escalation(session, conversation_id=424242, summary="ghost")


def test_the_posted_message_is_remembered_to_update_it_and_relay_replies(session_factory, escalation):
    with session_factory.begin() as session:
        set_escalation_message(session, escalation.id, channel_id="C_HELPDESK", message_ts="1700000100.000001")
    with session_factory() as session:
        found = find_escalation_by_message(session, channel_id="C_HELPDESK", message_ts="1700000100.000001")
        assert found.id == escalation.id
        assert find_escalation_by_message(session, channel_id="C_HELPDESK", message_ts="1") is None
        assert active_escalation(session, escalation.conversation_id).id == escalation.id


def test_two_agents_claiming_at_once_leave_one_owner(session_factory, escalation, race):
    def claim(index: int) -> bool:
        with session_factory.begin() as session:
            return claim_escalation(session, escalation.id, agent_id=f"U_AGENT{index}")

    wins = race(8, claim)
    assert wins.count(True) == 1
    stored = _load(session_factory, escalation.id)
    assert stored.status == EscalationStatus.CLAIMED
    assert stored.claimed_by == f"U_AGENT{wins.index(True)}"
    assert stored.claimed_at is not None and stored.claimed_at.tzinfo is UTC
    with session_factory() as session:
        assert session.get(Conversation, escalation.conversation_id).state == ConversationState.HANDED_TO_HUMAN


def test_a_double_click_on_claim_is_a_no_op(session_factory, escalation):
    with session_factory.begin() as session:
        assert claim_escalation(session, escalation.id, agent_id="U_AGENT1")
        assert session.get(Escalation, escalation.id).claimed_by == "U_AGENT1"  # the loaded copy is fresh
        assert not claim_escalation(session, escalation.id, agent_id="U_AGENT1")
        assert not claim_escalation(session, escalation.id + 999, agent_id="U_AGENT1")


def test_resolving_closes_the_conversation_and_only_once(session_factory, escalation, race):
    claimed_at = datetime(2025, 6, 1, 9, 0, tzinfo=UTC)
    with session_factory.begin() as session:
        claim_escalation(session, escalation.id, agent_id="U_AGENT1", at=claimed_at)

    def resolve(index: int) -> bool:
        with session_factory.begin() as session:
            return resolve_escalation(session, escalation.id, agent_id=f"U_AGENT{index}")

    assert race(4, resolve).count(True) == 1
    stored = _load(session_factory, escalation.id)
    assert stored.status == EscalationStatus.RESOLVED
    assert stored.claimed_by == "U_AGENT1" and stored.claimed_at == claimed_at  # the claim is kept
    assert stored.resolved_by.startswith("U_AGENT") and stored.resolved_at > claimed_at
    with session_factory.begin() as session:
        assert session.get(Conversation, escalation.conversation_id).state == ConversationState.CLOSED
        assert not cancel_escalation(session, escalation.id)
        assert not claim_escalation(session, escalation.id, agent_id="U_AGENT9")


def test_resolving_without_claiming_first_counts_the_resolver_as_owner(session_factory, escalation):
    at = datetime.now(UTC) + timedelta(minutes=5)
    with session_factory.begin() as session:
        assert resolve_escalation(session, escalation.id, agent_id="U_AGENT2", at=at)
    stored = _load(session_factory, escalation.id)
    assert (stored.claimed_by, stored.claimed_at, stored.resolved_by, stored.resolved_at) == \
        ("U_AGENT2", at, "U_AGENT2", at)


def test_a_user_who_sorted_it_out_cancels_and_the_bot_answers_again(session_factory, escalation):
    with session_factory.begin() as session:
        claim_escalation(session, escalation.id, agent_id="U_AGENT1")
    with session_factory.begin() as session:
        assert cancel_escalation(session, escalation.id)
        assert not cancel_escalation(session, escalation.id)
        assert not resolve_escalation(session, escalation.id, agent_id="U_AGENT1")
    assert _load(session_factory, escalation.id).status == EscalationStatus.CANCELLED
    with session_factory.begin() as session:
        assert session.get(Conversation, escalation.conversation_id).state == ConversationState.OPEN
        assert active_escalation(session, escalation.conversation_id) is None
        again, created = open_escalation(session, conversation_id=escalation.conversation_id, summary="back again")
        assert created and again.id != escalation.id


def test_only_the_requester_rates_a_resolved_escalation_from_1_to_5(session_factory, escalation):
    with session_factory.begin() as session:
        assert not rate_escalation(session, escalation.id, user_id="U_ALICE", rating=5)  # not resolved yet
        resolve_escalation(session, escalation.id, agent_id="U_AGENT1")
        assert not rate_escalation(session, escalation.id, user_id="U_MALLORY", rating=1)
        assert rate_escalation(session, escalation.id, user_id="U_ALICE", rating=3)
        assert rate_escalation(session, escalation.id, user_id="U_ALICE", rating=4)  # changed her mind
        for wrong in (0, 6):
            with pytest.raises(ValueError, match="1 to 5"):
                rate_escalation(session, escalation.id, user_id="U_ALICE", rating=wrong)
    assert _load(session_factory, escalation.id).satisfaction == 4


def test_status_lists_the_users_open_and_claimed_escalations_newest_first(session_factory, escalation):
    with session_factory.begin() as session:
        second_thread = get_or_create_conversation(session, team_id="T1", channel_id="D_ALICE", thread_ts="2.0",
                                                   user_id="U_ALICE", source="slash")
        third_thread = get_or_create_conversation(session, team_id="T1", channel_id="D_ALICE", thread_ts="3.0",
                                                  user_id="U_ALICE", source="dm")
        bobs = get_or_create_conversation(session, team_id="T1", channel_id="D_BOB", thread_ts="4.0",
                                          user_id="U_BOB", source="dm")
        claimed, _ = open_escalation(session, conversation_id=second_thread.id, summary="printer")
        done, _ = open_escalation(session, conversation_id=third_thread.id, summary="mouse")
        open_escalation(session, conversation_id=bobs.id, summary="bob's")
        claimed.created_at = escalation.created_at + timedelta(seconds=1)
    with session_factory.begin() as session:
        claim_escalation(session, claimed.id, agent_id="U_AGENT1")
        resolve_escalation(session, done.id, agent_id="U_AGENT1")
    with session_factory() as session:
        listed = list_open_escalations_for_user(session, "U_ALICE")
        assert [e.id for e in listed] == [claimed.id, escalation.id]
        assert [e.status for e in listed] == ["claimed", "open"]
        assert list_open_escalations_for_user(session, "U_NOBODY") == []

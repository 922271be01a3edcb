"""Evaluation runs for the nightly trend, and knowledge-base drafts saved from escalations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storage.repository import (add_evaluation_run, create_kb_draft, last_evaluation_runs, list_kb_drafts,
                                mark_kb_draft_exported, open_escalation)

START = datetime(2025, 6, 1, 2, 0, tzinfo=UTC)


def test_the_trend_chart_gets_the_last_runs_oldest_first(session_factory):
    with session_factory.begin() as session:
        for night in range(16):
            started = START + timedelta(days=night)
            add_evaluation_run(session, started_at=started, finished_at=started + timedelta(seconds=90),
                               model="SmolLM2-135M", adapter=None if night < 8 else "adapters/v2", mode="kb",
                               metrics={"intent_accuracy": round(0.80 + night / 100, 2), "latency_ms": {"p50": 12.5}},
                               n=400)
    with session_factory() as session:
        runs = last_evaluation_runs(session, 14)
        assert len(runs) == 14
        assert runs[-1].started_at == START + timedelta(days=15)  # the latest
        assert runs[0].started_at == START + timedelta(days=2)
        assert runs[-1].metrics == {"intent_accuracy": 0.95, "latency_ms": {"p50": 12.5}}
        assert (runs[-1].duration_s, runs[-1].n, runs[-1].adapter, runs[0].adapter) == (90, 400, "adapters/v2", None)
        assert last_evaluation_runs(session, 2)[0].started_at == START + timedelta(days=14)


def test_no_runs_yet_gives_an_empty_trend(session_factory):
    with session_factory() as session:
        assert last_evaluation_runs(session) == []


def test_an_agents_answer_becomes_a_redacted_draft_to_review_and_export(session_factory, conversation):
    with session_factory.begin() as session:
        escalation, _ = open_escalation(session, conversation_id=conversation.id, summary="VPN profile broken")
        draft = create_kb_draft(session, escalation_id=escalation.id, intent="vpn",
                                title="Re-import the VPN profile " * 20,
                                body="1. Open the VPN app\n2. Sign in, the temp password is Welcome123!")
        by_hand = create_kb_draft(session, escalation_id=None, title="Printer toner", body="Call facilities.")
    with session_factory.begin() as session:
        pending = list_kb_drafts(session, exported=False)
        assert [d.id for d in pending] == [draft.id, by_hand.id]
        assert len(pending[0].title) == 200 and pending[0].intent == "vpn"
        assert "Welcome123!" not in pending[0].body and "Open the VPN app" in pending[0].body
        assert mark_kb_draft_exported(session, draft.id)
        assert not mark_kb_draft_exported(session, draft.id)
    with session_factory() as session:
        assert [d.id for d in list_kb_drafts(session, exported=False)] == [by_hand.id]
        assert [d.id for d in list_kb_drafts(session, exported=True)] == [draft.id]
        assert len(list_kb_drafts(session)) == 2

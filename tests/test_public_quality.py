"""Regression guard on data nobody on this project wrote (CLINC150, the Rasa helpdesk NLU data) and on the
organisation-KB fixture. The full figures come from ``bench/public_bench.py``; these floors sit under them."""

from __future__ import annotations

import pytest

from bench import public_bench


def test_everyday_questions_rarely_get_it_steps(engine):
    # a third of CLINC150's validation split (the figure on its test split is in bench/results/public.json)
    result = public_bench.clinc(engine, "val", lambda rows, _: rows, sample=3)
    assert result["n"] > 1000
    assert result["it_steps_share"] <= 0.02, result["examples"][:10]


def test_helpdesk_requests_are_not_turned_away_and_greetings_are_greeted(engine):
    result = public_bench.rasa(engine, lambda rows, _: rows)
    assert result["it_rejected_share"] <= 0.03, result["it_misses"]
    assert result["it_right_topic_share"] >= 0.75, result["it_misses"]
    assert result["greetings_greeted_share"] >= 0.9
    assert result["human_requests_escalated_share"] >= 0.85


def test_a_team_kb_answers_questions_about_its_own_systems(cache_dir):
    from bot.settings import Settings

    settings = Settings(_env_file=None, cache_dir=cache_dir)
    result = public_bench.org(settings, lambda rows, _: rows)
    assert result["answered_from_the_right_article"] >= 0.75, result["misses"][:10]
    assert result["without_examples"] >= 0.7
    assert result["uncovered_answered_from_an_org_article"] <= 0.08, result["uncovered_wrong"]


def test_the_organisation_kb_chart_draws_one_group_of_bars_per_company(tmp_path):
    figures = {"answered_from_the_right_article": 0.9, "uncovered_answered_from_an_org_article": 0.1, "articles": 12}
    labelled = {**figures, "uncovered_answered_by_kind": {"near_miss": 0.2, "other_system": 0.0}}
    path = public_bench.org_chart({"organisation_kb": figures, "organisation_kb_tailspin": labelled},
                                  tmp_path / "chart.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
    with pytest.raises(ValueError, match="no organisation-KB results"):
        public_bench.org_chart({"clinc150": {}}, tmp_path / "none.png")


def test_a_held_out_companys_missed_questions_are_counted_but_never_written(cache_dir, monkeypatch, tmp_path):
    from bot.settings import Settings

    (tmp_path / "kb").mkdir()
    (tmp_path / "kb" / "kiosk.md").write_text(
        "---\nid: kiosk\ntitle: Fix the library self-service kiosk\n---\n1. Restart the kiosk from the back switch.\n",
        encoding="utf-8")
    (tmp_path / "kb" / "rooms.md").write_text(
        "---\nid: rooms\ntitle: Book a study room\nexamples: [how do I book a study room]\n---\n1. Open RoomPal.\n",
        encoding="utf-8")
    questions, uncovered = tmp_path / "questions.jsonl", tmp_path / "uncovered.jsonl"
    questions.write_text('{"text": "the self-service kiosk in the library is frozen", "article": "kiosk"}\n'
                         '{"text": "zzz unrelated words about nothing", "article": "rooms"}\n', encoding="utf-8")
    uncovered.write_text(
        '{"text": "how do I restart the kiosk in the library", "article": null, "kind": "near_miss"}\n'
        '{"text": "the canteen card reader wont take my card", "article": null, "kind": "other_system"}\n',
        encoding="utf-8")
    monkeypatch.setitem(public_bench.ORG_SETS, "secretco", (tmp_path / "kb", questions, uncovered))
    monkeypatch.setattr(public_bench, "HELD_OUT", frozenset({"secretco"}))
    result = public_bench.org(Settings(_env_file=None, cache_dir=cache_dir), lambda rows, _: rows, "secretco")
    assert result["questions"] == 2 and result["answered_from_the_right_article"] < 1.0
    written = str(result["misses"]) + str(result["uncovered_wrong"])
    assert "zzz" not in written and "restart" not in written
    assert result["misses"][0]["count"] == 2 * (1 - result["answered_from_the_right_article"])
    by_kind = result["uncovered_answered_by_kind"]  # one question of each kind: the two shares average to the whole
    assert set(by_kind) == {"near_miss", "other_system"}
    assert (by_kind["near_miss"] + by_kind["other_system"]) / 2 == result["uncovered_answered_from_an_org_article"]
    assert "canteen" not in str(result)
    # answers that say "this is the closest article I have" are counted apart from those given as if sure
    assert 0 <= result["uncovered_answered_without_the_hedge"] <= result["uncovered_answered_from_an_org_article"]
    monkeypatch.setattr(public_bench, "HELD_OUT", frozenset())  # a development set: its misses are listed
    result = public_bench.org(Settings(_env_file=None, cache_dir=cache_dir), lambda rows, _: rows, "secretco")
    assert "zzz" in str(result["misses"])

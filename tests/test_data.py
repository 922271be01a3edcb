"""The data is valid, complete and leak-free."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from data import INTENTS_DIR, KB_DIR, SPLITS_DIR
from data.splits import SPLIT_NAMES, add_train_only, build_splits, cross_near_duplicates, load_split, make_splits, \
    near_duplicate
from data.utterances import Utterance
from data.utterances import load_utterances, read_jsonl
from llm.errors import KnowledgeBaseError
from answers.kb import load_kb, parse_article
from answers.taxonomy import INTENTS, IT_INTENTS


@pytest.fixture(scope="module")
def kb():
    return load_kb(KB_DIR)


def test_the_knowledge_base_covers_every_it_intent_with_numbered_steps(kb):
    assert len(kb) >= 60
    for intent in IT_INTENTS:
        articles = kb.for_intent(intent)
        assert len(articles) >= 3, intent
        for article in articles:
            assert "1. " in article.body and "2. " in article.body, article.id
            assert article.examples and article.keywords, article.id


def test_a_broken_article_is_reported_with_its_file_and_reason(tmp_path):
    with pytest.raises(KnowledgeBaseError, match="missing front matter"):
        parse_article("no front matter here", path=tmp_path / "x.md")
    with pytest.raises(KnowledgeBaseError, match="front matter needs 'title'"):
        parse_article("---\nid: x\nintent: wifi\n---\nbody", path=tmp_path / "x.md")
    with pytest.raises(KnowledgeBaseError, match="unknown placeholders \\['ceo_phone'\\]"):
        parse_article("---\nid: x\nintent: wifi\ntitle: X\n---\ncall {ceo_phone}", path=tmp_path / "x.md")


def test_every_intent_has_at_least_60_utterances_with_valid_labels():
    counts = Counter(u.intent for u in load_utterances(INTENTS_DIR))
    assert set(counts) == set(INTENTS)
    assert min(counts.values()) >= 60, counts


def test_committed_splits_are_up_to_date_with_the_utterance_files():
    expected, _ = build_splits()
    for name in SPLIT_NAMES:
        assert load_split(name) == [u.to_dict() for u in expected[name]], f"run python -m data.splits ({name})"


def test_no_exact_or_near_duplicate_crosses_splits():
    splits = {name: [row["text"] for row in load_split(name)] for name in SPLIT_NAMES}
    for i, first in enumerate(SPLIT_NAMES):
        for second in SPLIT_NAMES[i + 1:]:
            leaks = cross_near_duplicates(splits[first], splits[second])
            assert not leaks, f"{first}/{second}: {leaks[:3]}"


def test_near_duplicate_detection_catches_rewordings_and_spares_different_questions():
    assert near_duplicate("my vpn won't connect", "my VPN wont connect!!")
    assert near_duplicate("how do I reset my password", "how do i reset my password pls")
    assert not near_duplicate("my vpn won't connect", "the printer on floor 3 is jammed")
    assert cross_near_duplicates(["my vpn won't connect"], ["printer jammed", "My VPN won't connect."]) == [
        ("my vpn won't connect", "My VPN won't connect.")]


def test_train_only_lines_never_reach_held_out_splits_and_rewordings_of_held_out_lines_are_dropped():
    splits = {"train": [Utterance("wifi not working", "wifi", "wifi", "answer")],
              "validation": [Utterance("my vpn won't connect", "vpn", "vpn", "answer")],
              "test": [Utterance("printer on floor 3 is jammed", "printer", "printer", "answer")]}
    extra = [Utterance(text, label, label, "answer") for text, label in [
        ("My VPN wont connect!!", "vpn"),              # rewords a validation line
        ("the printer on floor 3 is jammed", "printer"),  # rewords a test line
        ("WiFi not working", "wifi"),                  # repeats a training line
        ("GlobalProtect says gateway unreachable", "vpn")]]

    dropped = add_train_only(splits, extra)

    assert [u.text for u in dropped] == ["My VPN wont connect!!", "the printer on floor 3 is jammed", "WiFi not working"]
    assert [u.text for u in splits["train"]] == ["wifi not working", "GlobalProtect says gateway unreachable"]
    assert len(splits["validation"]) == len(splits["test"]) == 1


def test_splits_are_stratified_by_intent():
    stratified = make_splits(load_utterances(INTENTS_DIR))  # train-only lines aside
    test_counts = Counter(u.intent for u in stratified["test"])
    train_counts = Counter(u.intent for u in stratified["train"])
    assert sum(test_counts.values()) >= 300
    for intent in INTENTS:
        share = test_counts[intent] / (test_counts[intent] + train_counts[intent])
        assert 0.15 <= share <= 0.3, (intent, share)


def test_the_independent_challenge_set_is_valid():
    rows = read_jsonl(SPLITS_DIR.parent / "eval" / "challenge.jsonl")
    assert len(rows) >= 300
    assert {row["intent"] for row in rows} <= set(INTENTS)
    assert {row["action"] for row in rows} <= {"answer", "clarify", "reject", "escalate"}


def test_committed_sft_files_are_up_to_date():
    from training.sft_data import build_sft

    from data import SFT_DIR

    built = build_sft()
    for name in SPLIT_NAMES:
        assert read_jsonl(SFT_DIR / f"{name}.jsonl.gz") == built[name], f"run python -m training.sft_data ({name})"


def test_sft_examples_are_grounded_chats_in_the_same_splits_as_the_intents(kb):
    from data import SFT_DIR
    from answers.normalize import normalize_slack_text
    from answers.redact import redact
    from training.sft_data import TRAIN_PER_ARTICLE

    for name in SPLIT_NAMES:
        examples = read_jsonl(SFT_DIR / f"{name}.jsonl.gz")
        # examples hold the question as the engine saw it: Slack markup normalised, secrets masked
        split = {redact(normalize_slack_text(row["text"])).text: row for row in load_split(name)}
        for example in examples:
            row = split[example["text"]]  # never a question of another split
            roles = [m["role"] for m in example["messages"]]
            assert roles == ["system", "user", "assistant"]
            assert example["intent"] == row["intent"]
            assert example["messages"][1]["content"] == redact(example["messages"][1]["content"]).text
            for article_id in example["sources"]:
                assert kb.get(article_id) is not None, article_id
            if example["action"] == "answer":
                assert example["sources"] and "1. " in example["reference"]
                title = kb.get(example["sources"][0]).title
                assert title.split("{")[0] in example["messages"][0]["content"]
        if name == "test":  # the nightly evaluation in model modes answers every held-out question
            assert len(examples) == len(split)
        else:  # CPU-sized: only the answers a model is asked to write, a few per article
            assert {example["action"] for example in examples} == {"answer"}
            per_article = Counter(example["sources"][0] for example in examples)
            assert max(per_article.values()) <= TRAIN_PER_ARTICLE and len(per_article) >= 60


def test_a_condensed_reply_keeps_the_first_steps_of_the_article_in_few_words(kb):
    from answers.org import OrgProfile
    from training.sft_data import REPLY_STEPS, condensed_reply

    org = OrgProfile()
    article = next(a for a in kb.articles if a.id == "account-lockout-no-portal-access")
    reply = condensed_reply(article, org)
    body = article.render(org)
    assert reply.startswith(f"**{article.render_title(org)}**\n\n1. ")
    steps = re.findall(r"^\d+\. (.+)$", reply, re.M)
    assert len(steps) == REPLY_STEPS
    for step in steps:  # each is the beginning of one of the article's steps, word for word
        assert step in body
    assert len(reply.split()) < 0.7 * len(body.split())
    assert reply.endswith(f"contact {org.helpdesk_name} at {org.helpdesk_phone} or {org.helpdesk_email}.")
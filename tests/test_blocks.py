"""Block Kit builders and the rate limiter: pure pieces of the Slack app."""

from __future__ import annotations

import json

from answers.compose import CLOSEST_PROMPT, SWITCH_PROMPT
from bot import blocks
from bot.mrkdwn import split_text, to_mrkdwn
from bot.ratelimit import RateLimiter


def _all_blocks_within_slack_limits(message):
    assert len(message["text"]) < 4000
    assert len(message.get("blocks", [])) <= 50
    for block in message.get("blocks", []):
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= 3000
        for element in block.get("elements", []):
            if element.get("type") == "button":
                assert len(element["value"]) <= 2000
                assert len(element["text"]["text"]) <= 75


def test_a_long_answer_is_split_into_messages_slack_accepts():
    answer = "\n\n".join(f"{n}. " + "step text " * 60 for n in range(1, 40))
    messages = blocks.answer_messages(answer=answer, action="answer", sources=["A title"], choices=[],
                                      message_id=7, conversation_id=3)
    assert len(messages) > 1
    for message in messages:
        _all_blocks_within_slack_limits(message)
    joined = " ".join(m["text"] for m in messages)
    assert joined.count("step text") == answer.count("step text")
    assert [m["blocks"][-1]["type"] for m in messages] == ["section"] * (len(messages) - 1) + ["context_actions"]
    assert messages[-1]["blocks"][-2]["type"] == "actions"  # buttons only on the last piece


def test_an_answer_ends_with_talk_to_a_human_and_slacks_feedback_buttons_naming_the_message():
    message = blocks.answer_messages(answer="**Do this**\n\n1. a", action="answer", sources=["Reset"], choices=[],
                                     message_id=42, conversation_id=9)[0]
    assert message["blocks"][0]["text"]["text"].startswith("*Do this*")
    actions, feedback = message["blocks"][-2:]
    assert [a["action_id"] for a in actions["elements"]] == [blocks.ACTION_HUMAN]
    assert json.loads(actions["elements"][0]["value"]) == {"m": 42, "c": 9}
    assert feedback["type"] == "context_actions"
    [buttons] = feedback["elements"]
    assert (buttons["type"], buttons["action_id"]) == ("feedback_buttons", blocks.ACTION_FEEDBACK)
    assert json.loads(buttons["positive_button"]["value"]) == {"m": 42, "c": 9, "k": "solved"}
    assert json.loads(buttons["negative_button"]["value"]) == {"m": 42, "c": 9, "k": "not_helpful"}


def test_sources_link_to_the_articles_intranet_page_when_the_kb_gives_one():
    message = blocks.answer_messages(answer="1. a", action="answer", choices=[], message_id=1, conversation_id=2,
                                     sources=[("Reset | MFA", "https://wiki.example.com/mfa"), ("VPN", None)])[0]
    sources = next(b for b in message["blocks"] if b["type"] == "context")["elements"][0]["text"]
    assert sources == ":books: Sources: <https://wiki.example.com/mfa|Reset - MFA>; VPN"


def test_every_answer_but_a_question_back_can_be_rated():
    for action in ("answer", "escalate", "reject"):
        message = blocks.answer_messages(answer="text", action=action, sources=[], choices=[], message_id=1,
                                         conversation_id=2)[0]
        assert message["blocks"][-1]["type"] == "context_actions", action
    clarify = blocks.answer_messages(answer="Which one?", action="clarify", sources=[], choices=["wifi", "vpn"],
                                     message_id=1, conversation_id=2)[0]
    assert "context_actions" not in json.dumps(clarify)


def test_clarify_offers_topics_as_buttons():
    message = blocks.answer_messages(answer="Which one?", action="clarify", sources=[], choices=["wifi", "vpn"],
                                     message_id=1, conversation_id=2)[0]
    buttons = message["blocks"][-1]["elements"]
    assert [b["text"]["text"] for b in buttons] == ["Wi-Fi", "VPN", "Talk to a human"]
    assert json.loads(buttons[1]["value"]) == {"c": 2, "i": "vpn"}


def test_an_answer_to_a_terse_message_offers_the_other_likely_topics_as_buttons():
    message = blocks.answer_messages(answer="1. Restart Outlook", action="answer", sources=["Outlook"],
                                     choices=["software_issue", "slow_computer", "phishing", "vpn"], message_id=1,
                                     conversation_id=2)[0]
    actions = next(b for b in message["blocks"] if b["type"] == "actions")
    labels = [b["text"]["text"] for b in actions["elements"]]
    assert labels == ["App problems", "Slow computer", "Phishing & scams", "Talk to a human"]
    assert json.loads(actions["elements"][0]["value"]) == {"c": 2, "i": "software_issue"}
    assert SWITCH_PROMPT in json.dumps(message["blocks"])
    assert message["blocks"][-1]["type"] == "context_actions"  # still rated
    rejected = blocks.answer_messages(answer="text", action="reject", sources=[], choices=["vpn"], message_id=1,
                                      conversation_id=2)[0]
    assert blocks.ACTION_TOPIC not in json.dumps(rejected)


def test_no_article_about_it_offers_the_closest_articles_topic_as_a_button():
    message = blocks.answer_messages(answer="I don't have an article...", action="escalate", sources=["Licences"],
                                     choices=["software licence", "vpn"], message_id=1, conversation_id=2)[0]
    actions = next(b for b in message["blocks"] if b["type"] == "actions")
    assert [b["text"]["text"] for b in actions["elements"]] == ["Software licence", "Talk to a human"]
    assert CLOSEST_PROMPT in json.dumps(message["blocks"]) and SWITCH_PROMPT not in json.dumps(message["blocks"])


def test_broadcast_mentions_are_defused():
    assert "<!channel>" not in to_mrkdwn("hello <!channel> and <!here|here>")
    assert "@channel" not in to_mrkdwn("ping @channel")


def test_a_user_group_mention_in_an_answer_is_defused():
    text = to_mrkdwn("ask <!subteam^S0123ABCD|@it-team> or <!subteam^S99>")
    assert "<!subteam" not in text and "it-team" in text


def test_user_text_in_escalations_cannot_mention_or_link():
    post = blocks.escalation_post(escalation_id=1, user_id="U1", intent="vpn", urgency="high",
                                  summary="User: <!channel> help <https://evil.example|click>", details=None,
                                  status="open")
    text = post["blocks"][0]["text"]["text"]
    assert "<!channel>" not in text and "<https://" not in text
    _all_blocks_within_slack_limits(post)


def test_split_text_keeps_everything_and_respects_the_limit():
    text = "word " * 2000
    pieces = split_text(text, 3000)
    assert all(len(p) <= 3000 for p in pieces)
    assert " ".join(pieces).split() == text.split()


def test_rate_limiter_allows_n_per_window_then_says_when_to_retry():
    now = [0.0]
    limiter = RateLimiter(count=2, period_s=60, clock=lambda: now[0])
    assert limiter.check("U1") == 0 and limiter.check("U1") == 0
    assert limiter.check("U1") == 60
    assert limiter.check("U2") == 0  # per user
    now[0] = 30
    assert limiter.check("U1") == 30
    now[0] = 61
    assert limiter.check("U1") == 0

"""The Messages tab's suggested prompts: the most asked topics as questions, defaults until there are some."""

from __future__ import annotations

from bot.suggestions import DEFAULT_TOPICS, MAX_PROMPTS, QUESTIONS, suggested_prompts


def test_with_nothing_asked_yet_the_defaults_are_suggested():
    prompts = suggested_prompts([])
    assert [p["message"] for p in prompts] == [QUESTIONS[t] for t in DEFAULT_TOPICS]
    assert [p["title"] for p in prompts] == ["Password reset", "VPN", "MFA / authenticator", "Wi-Fi"]


def test_the_most_asked_topics_come_first_then_defaults_fill_up_to_four_each_once():
    prompts = suggested_prompts(["printer", "vpn"])
    assert [p["title"] for p in prompts] == ["Printers", "VPN", "Password reset", "MFA / authenticator"]
    assert len(suggested_prompts(["printer", "vpn", "email", "wifi", "mfa", "hardware"])) == MAX_PROMPTS


def test_greetings_and_non_it_messages_are_not_topics_and_an_organisations_own_topic_gets_a_question():
    prompts = suggested_prompts(["greeting", "out_of_scope", "expenses_tool", "vague"])
    assert prompts[0] == {"title": "Expenses_tool", "message": "I need help with expenses_tool"}
    assert all(p["title"] not in ("Greeting", "Not IT", "Unclear request") for p in prompts)

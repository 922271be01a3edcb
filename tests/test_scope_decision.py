"""The three-way scope decision when the organisation's own article and the router disagree.

The router learnt "not IT", "a person, please" and "needs a human now" from everyday questions and the built-in
topics, never from an organisation's own systems. These stories pin down when the organisation's article wins.
"""

from __future__ import annotations

import pytest

from answers.policy import Evidence, Turn, decide
from answers.router import Route


def _route(intent: str, confidence: float, *, urgency: float = 0.0) -> Route:
    rest = 1.0 - confidence
    return Route(intent=intent, label=intent, confidence=confidence, urgency=urgency,
                 ranked=((intent, confidence), ("software_issue" if intent != "software_issue" else "email", rest)))


# The organisation's dictation article fits the question well; the router is only half sure it is not IT.
COVERED_OWN = Evidence(topic="dictation", score=0.47, covered=True, strong=False, content=True, own=True)


def test_an_unsure_not_it_verdict_yields_to_the_organisations_article_that_covers_the_problem():
    text = "dragon keeps typing the wrong drug name, how do i fix it"
    decision = decide(text, _route("out_of_scope", 0.45), evidence=COVERED_OWN)
    assert decision.action.value == "answer" and decision.intent == "dictation"


def test_a_sure_not_it_verdict_still_declines_unless_the_article_clearly_answers():
    text = "how do i book a meeting room for thursday"
    decision = decide(text, _route("out_of_scope", 0.89), evidence=COVERED_OWN)
    assert decision.action.value == "reject"
    strong = Evidence(topic="dictation", score=0.7, covered=True, strong=True, content=True, own=True)
    assert decide(text, _route("out_of_scope", 0.89), evidence=strong).action.value == "answer"


def test_a_built_in_article_does_not_overrule_an_unsure_not_it_verdict():
    text = "how do i update my bank details for my salary"
    built_in = Evidence(topic="email", score=0.47, covered=True, strong=False, content=True, own=False)
    unsure = Route(intent="out_of_scope", label="out_of_scope", confidence=0.45,
                   ranked=(("out_of_scope", 0.45), ("os_update", 0.3), ("vague", 0.15), ("greeting", 0.1)))
    assert decide(text, unsure, evidence=built_in).action.value == "reject"


def test_a_request_the_it_topics_share_between_them_is_asked_about_not_turned_away():
    # "not IT" is the likeliest single label, but the IT topics together are likelier still
    text = "User account disabled - returning from maternity leave"
    split = Route(intent="out_of_scope", label="out_of_scope", confidence=0.49,
                  ranked=(("out_of_scope", 0.49), ("account_lockout", 0.26), ("password_reset", 0.12),
                          ("access_request", 0.08), ("mfa", 0.04), ("vague", 0.01)))
    uncovered = Evidence(topic="account_lockout", score=0.31, covered=False, strong=False, content=True)
    assert decide(text, split, evidence=uncovered).action.value == "clarify"
    # ... while a message that "not IT" outweighs them all is still declined
    declined = Route(intent="out_of_scope", label="out_of_scope", confidence=0.55,
                     ranked=(("out_of_scope", 0.55), ("account_lockout", 0.26), ("password_reset", 0.12),
                             ("vague", 0.07)))
    assert decide(text, declined, evidence=uncovered).action.value == "reject"


def test_someone_else_holding_a_record_open_is_a_problem_to_answer_not_a_request_for_a_person():
    text = "cant get into a patient chart, says someone else has it open since 6am, what do i do"
    decision = decide(text, _route("human_request", 0.39), evidence=COVERED_OWN)
    assert decision.action.value == "answer"
    # ... but a clear request for a person still reaches one
    decision = decide("can someone from IT call me please", _route("human_request", 0.9), evidence=COVERED_OWN)
    assert decision.action.value == "escalate"


def test_the_routers_own_urgency_yields_to_an_article_that_clearly_answers_but_a_rule_does_not():
    strong = Evidence(topic="clinical messaging", score=0.6, covered=True, strong=True, content=True, own=True)
    text = "not getting any alerts on my work iphone for the secure msgs, missed 2 urgent ones"
    decision = decide(text, _route("mobile_device", 0.7, urgency=0.9), evidence=strong)
    assert decision.action.value == "answer"
    weak = Evidence(topic="clinical messaging", score=0.4, covered=True, strong=False, content=True, own=True)
    assert decide(text, _route("mobile_device", 0.7, urgency=0.9), evidence=weak).reason == "needs a human now"
    stolen = "my work phone was stolen on the train, the messaging app is on it"
    assert decide(stolen, _route("mobile_device", 0.7), evidence=strong).reason == "needs a human now"


def test_a_password_protected_file_is_not_a_password_given_away():
    text = "client sent payslips as a password protected pdf and the upload wont take it"
    route = Route(intent="software_issue", label="software_issue", confidence=0.6,
                  ranked=(("software_issue", 0.6), ("phishing", 0.3), ("email", 0.1)))
    assert decide(text, route, evidence=COVERED_OWN).reason != "needs a human now"
    shared = "i sent my password to someone who said they were from IT"
    assert decide(shared, route, evidence=COVERED_OWN).reason == "needs a human now"


def _hit(article_id: str, *, dense: float, sentence: float, coverage: float, intent: str | None = None):
    from answers.kb import parse_article
    from answers.retrieval import Hit

    intent_line = f"intent: {intent}\n" if intent else ""
    front = f"---\nid: {article_id}\ntitle: {article_id}\n{intent_line}---\n1. Step.\n"
    return Hit(article=parse_article(front), score=dense, dense=dense, sentence=sentence, coverage=coverage)


def test_a_question_that_fits_two_of_the_organisations_articles_alike_fits_neither_as_well():
    from answers.engine import COVERAGE_WEIGHT, LEAD_CAP, AnswerEngine

    best = _hit("maximo-breakdowns", dense=0.5, sentence=0.55, coverage=0.5)
    alone = [best, _hit("concur-expenses", dense=0.2, sentence=0.2, coverage=0.0)]
    alike = [best, _hit("maximo-preventive", dense=0.48, sentence=0.5, coverage=0.5)]
    clear, torn = AnswerEngine.own_fit(best, alone), AnswerEngine.own_fit(best, alike)
    assert torn < clear
    # the lead counts up to LEAD_CAP, however far the organisation's other articles are
    assert clear == pytest.approx(0.55 + COVERAGE_WEIGHT * 0.5 + LEAD_CAP)
    # with no other article of its own, the lead is over the built-in articles
    lone = AnswerEngine.own_fit(best, [best, _hit("vpn-cisco", dense=0.6, sentence=-1.0, coverage=1.0, intent="vpn")])
    assert lone < 0.55 + COVERAGE_WEIGHT * 0.5


def test_a_phone_missing_a_part_is_not_a_lost_phone_but_a_missing_phone_still_is():
    covered = Evidence(topic="mobile_device", score=0.6, covered=True, strong=False, content=True, own=False)
    sure_and_urgent = _route("mobile_device", 0.6, urgency=0.9)  # the router learnt "missing" from lost phones
    for text in ("my phone is missing a button", "lost all my contacts on my phone", "missing icons on my iphone",
                 "my laptop is missing the charger", "lost signal on my phone"):
        assert decide(text, sure_and_urgent, evidence=covered).reason != "needs a human now", text
    for text in ("my phone is missing", "lost my work phone on the bus", "my laptop is missing from my desk",
                 "i think i left my ipad in a taxi", "missing my laptop since friday"):
        assert decide(text, _route("mobile_device", 0.6), evidence=covered).reason == "needs a human now", text


def test_asking_how_to_reach_someone_else_is_a_question_not_a_request_for_a_person():
    text = "how do i msg whoever is on call for ortho tonight, dont know the residents name"
    assert decide(text, _route("human_request", 0.7), evidence=COVERED_OWN).action.value == "answer"
    for text in ("how do i contact the helpdesk", "how can i reach a human", "how do i talk to a person",
                 "how do i contact someone in IT"):
        decision = decide(text, _route("human_request", 0.9), evidence=COVERED_OWN)
        assert (decision.action.value, decision.reason) == ("escalate", "human_request"), text


def test_a_topic_picked_from_the_buttons_is_a_new_topic_even_if_the_message_reads_like_a_follow_up():
    """After an answer on email, the user presses the organisation's "hr self-service portal" button: the question
    ("the submit button still doesn't show") is re-asked on that topic, not taken as "that didn't work" on email."""
    history = [Turn("user", "outlook keeps asking for my password"),
               Turn("assistant", "1. Open Outlook...", intent="email", action="answer", sources=("email-password",))]
    text = "the submit button still doesn't show on the holiday form"
    picked = decide(text, _route("hr self-service portal", 1.0), history, evidence=COVERED_OWN)
    assert not picked.follow_up and picked.action.value == "answer"
    # a built-in topic picked the same way was already a new topic; a message typed after the answer still follows up
    assert not decide(text, _route("software_issue", 1.0), history, evidence=COVERED_OWN).follow_up
    assert decide("still doesn't work", _route("email", 0.8), history, evidence=COVERED_OWN).follow_up


def test_a_two_word_message_is_not_an_emergency_on_the_routers_word_alone():
    # the router learnt "battery" from swollen batteries; "laptop battery" says nothing of danger
    uneasy = _route("hardware", 0.99, urgency=0.9)
    hardware = Evidence(topic="hardware", score=0.5, covered=True, strong=False, content=True)
    assert decide("laptop battery", uneasy, evidence=hardware).action.value == "answer"
    assert decide("RE: FW: laptop battery", uneasy, evidence=hardware).action.value == "answer"
    # ... while a longer message the router finds urgent still reaches a person, and a rule needs no length
    longer = decide("the laptop battery is getting really hot under my hands", uneasy, evidence=hardware)
    assert longer.reason == "needs a human now"
    assert decide("battery swollen", uneasy, evidence=hardware).reason == "needs a human now"


def test_ones_own_gadgets_are_declined_unless_the_organisations_article_covers_them():
    text = "my xbox update stuck at 0% for an hour"
    built_in = Evidence(topic="os_update", score=0.6, covered=True, strong=False, content=True, own=False)
    decision = decide(text, _route("os_update", 0.95), evidence=built_in)
    assert (decision.action.value, decision.reason) == ("reject", "personal")
    # a games studio documents its console dev kits: its own article covers the question
    own = Evidence(topic="dev kits", score=0.7, covered=True, strong=True, content=True, own=True, fit=0.9)
    assert decide(text, _route("os_update", 0.95), evidence=own).action.value == "answer"

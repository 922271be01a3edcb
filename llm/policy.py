"""Decide what to do with a routed question: answer, clarify, reject or escalate.

Pure functions over plain data, so every rule is easy to test.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from llm.platforms import detect_platform
from llm.router import Route
from llm.taxonomy import IT_INTENTS, Action, default_action

__all__ = ["Turn", "Decision", "decide", "looks_like_injection", "looks_like_abuse", "urgent_intent", "CLARIFY_THRESHOLD"]

CLARIFY_THRESHOLD = 0.25
MAX_ANSWERS_BEFORE_ESCALATION = 2

_INJECTION = re.compile(
    r"(?i)("
    r"\b(ignore|disregard|forget|override|bypass)\b[^.?!\n]{0,40}\b(instructions?|rules|guidelines|prompts?|polic(y|ies)|guardrails|restrictions)\b"
    r"|\bsystem prompt\b|\bhidden (prompt|instructions)\b|\byour (initial |original )?(prompt|instructions|configuration)\b"
    r"|\byou are now\b|\bdeveloper mode\b|\bjailbr[eo]ak|\bDAN\b|\bno (filters?|restrictions)\b"
    r"|\bpretend (you are|to be|you're)\b|\brole-?play as\b"
    r"|\b(other|another|all|every) (users?|employees?|people|person)'?s? (data|conversations?|messages|chats?|passwords?|tickets?|history)"
    r"|\b(everyone|everybody)'?s (passwords?|data|conversations?)"
    r"|\b(all|every|everyone'?s|everybody'?s|other people'?s) (the )?escalations?\b"
    r"|\b(conversations?|messages|chats?|passwords?|data|tickets?|history)\b[^.?!]{0,20}\b(of|from|for|by) (the )?(other|another|all|every) (users?|employees?|people|colleagues?)\b"
    r"|^\s*(system|assistant)\s*:|(?-i:\bSYSTEM\s*:)|\bassistant\s*:|\[/?INST\]|<\|im_start\|>|<\|system\|>|<!--"
    r"|\bnew[_ ]instructions?\b|\bfrom now on\b|\b(act|acting) as (my|an?|the)\b|\bpretend\b|\boverride\s*[:=]"
    r"|\b(respond|reply|answer) only with\b|\bonly (respond|reply|answer) with\b|\bclassify this as\b"
    r"|\b(is|are) (now )?authori[sz]ed to\b|\bsafe_?mode\s*=\s*(off|false|0)"
    r"|\b(disable|turn off|switch off|bypass|remove) (your|the|all) (content )?(filters?|safety|guardrails|restrictions)\b"
    r")"
)
# Requests to harm others or get around security: refused whatever IT topic they mention.
_ABUSE = re.compile(
    r"(?i)("
    r"\b(hack|hacking|brute[- ]?forc\w*|keylog\w*|exploits?|sniff\w*|ddos)\b"
    # "crack" is abuse for passwords and licences, not for a cracked screen
    r"|\bcrack(ing|ed)?\b[^.?!]{0,20}\b(passwords?|licen[cs]es?|software|hash\w*|keys?|serials?|wi-?fi|wpa\w*|accounts?|pins?)\b"
    r"|\b(write|create|make|draft|build|design)\b[^.?!]{0,30}\b(phishing|scam|fake (login|invoice|email|page))\b"
    r"|\b(passwords?|credentials|logins?|pin|mfa|codes?) (of|for|from) (my )?(neighbou?rs?|colleagues?|co-?workers?|other people)\b"
    r"|\b(neighbou?r|colleague|co-?worker)'?s (password|login|credentials|wi-?fi|mfa|codes?)\b"
    r"|\bwhat'?s (his|her|their) password\b|\bwithout (them|him|her|anyone|my (boss|manager|colleagues?)) know\w*"
    r"|\bsecretly\b|\bcovertly\b|\bfake (my )?(location|compliance)|\blook compliant\b"
    # at most two words between the verb and what it would switch off, none of them "and"/"but": "an app I can't
    # uninstall and Defender keeps flagging it" is a question about malware, not a request to disable Defender
    r"|\b(uninstall|disable|turn off|switch off|remove|kill)\s+(?:(?!and\b|but\b|or\b)\S+\s+){0,2}"
    r"(dlp|monitoring|antivirus|anti-virus|defender|edr|crowdstrike|firewall|security (software|agent|tools?))\b"
    r"|\b(bypass|get around|get past|circumvent|evade)\b[^.?!]{0,30}"
    r"\b(dlp|monitoring|web ?filter|content filter|proxy|antivirus|defender|edr|mfa|2fa|firewall|security)\b"
    r")"
)
_FAILED = re.compile(
    r"(?i)\b(still|didn'?t|did not|doesn'?t|does not|not work\w*|no luck|same (problem|issue|error|thing)|"
    r"tried (that|this|it|those|everything|all)|no change|nope|not (fixed|solved|helping|helpful)|isn'?t working|"
    r"no difference|nothing changed|keeps? happening|again)\b"
)
_SOLVED = re.compile(
    r"(?i)\b(that (fixed|solved|worked|did) it|it'?s? (fixed|working|sorted|solved)( now)?|works now|working now|"
    r"all good( now)?|problem solved|sorted,? thanks?|that worked|fixed it)\b"
)
# Safety net for "needs a human now": a missed escalation costs far more than an extra one.
_COMPROMISE = (
    re.compile(r"(?i)\b(entered|typed|put in|gave|given|submitted|shared|told|sent|read out)\b(?![^.!?]{0,40}\b(wrong|incorrect|too many|mistyped)\b)"
               r"[^.!?]{0,40}\b(password|credentials?|creds|login details|verification code|mfa code|one[- ]time code|"
               r"codes?|otp|bank details)\b"),
    re.compile(r"(?i)\b(gave|granted|allowed|let)\b[^.!?]{0,30}\bremote (access|control|session)\b"),
    re.compile(r"(?i)\bapproved\b[^.!?]{0,40}\b(mfa|push|prompts?|requests?|sign-?ins?|duo|okta)\b"
               r"[^.!?]{0,60}\b(didn'?t|did not|wasn'?t|not me|by accident|accidentally|worried|wouldn'?t stop)\b"),
    re.compile(r"(?i)\b(sent|sending|sends)\b[^.!?]{0,30}\b(emails?|messages?|spam)\b[^.!?]{0,40}"
               r"\b(didn'?t|did not|never|by itself|on its own|without me)\b"),
    re.compile(r"(?i)\b(ran|opened|installed|enabled)\b[^.!?]{0,40}\b(attachment|macro|extension|program|app|file)\b"
               r"[^.!?]{0,40}\b(email|message|link|told|asked)\b[^.!?]{0,60}\b(now|since|weird|redirect\w*|pop-?ups?|encrypt\w*)\b"),
)
_DANGER = re.compile(
    r"(?i)\b(smok(e|ed|es|ing)|burning smell|smells? (like |of )?burn\w*|sparks?|sparking|swell\w*|swollen|bulg\w*|"
    r"on fire|melt\w*|spill\w*|spilt|poured\b[^.!?]{0,20}\b(coffee|water|tea|wine|juice|soda|drink))\b"
)
_LOSS = re.compile(
    r"(?i)\b(stolen|stole|lost|left|missing|theft|robbed|snatched)\b[^.!?]{0,40}"
    r"\b(laptop|macbook|notebook|computer|phone|iphone|android|ipad|tablet|device)\b"
    r"(?!\s*(charger|bag|case|cable|adapter|sleeve|stand|pen|mouse|dongle|password))"
)


@dataclass(frozen=True, slots=True)
class Turn:
    """One earlier turn of a conversation, as the engine needs it."""

    role: str  # "user" or "assistant"
    text: str
    intent: str | None = None
    action: str | None = None
    sources: tuple[str, ...] = ()  # article ids shown


@dataclass(frozen=True, slots=True)
class Decision:
    """What the engine will do, and why."""

    action: Action
    intent: str
    confidence: float
    reason: str
    platform: str | None = None
    follow_up: bool = False
    exclude: frozenset[str] = frozenset()


def looks_like_injection(text: str) -> bool:
    """True for attempts to change the assistant's rules or reach other people's data."""
    return bool(_INJECTION.search(text))


def looks_like_abuse(text: str) -> bool:
    """True for requests to harm others or get around security controls."""
    return bool(_ABUSE.search(text))


def urgent_intent(text: str, route: Route) -> str | None:
    """The intent of a message that needs a person now (compromise, danger, loss), else None."""
    # "entered my password ..." is only a compromise when phishing is in the air at all
    first, *specific = _COMPROMISE
    if any(pattern.search(text) for pattern in specific) or (route.probability("phishing") >= 0.1 and first.search(text)):
        return "phishing"
    if route.intent in ("hardware", "mobile_device", "slow_computer", "meetings_av"):
        if _DANGER.search(text) or _LOSS.search(text):
            return route.intent if route.intent in ("hardware", "mobile_device") else "hardware"
    return None


def _current_topic(history: Sequence[Turn]) -> tuple[str | None, int, frozenset[str], str | None]:
    """The IT intent the conversation is about, answers given on it, articles shown, platform named."""
    topic, answers, shown, platform = None, 0, set(), None
    for turn in history:
        if turn.role == "user":
            platform = detect_platform(turn.text) or platform
            continue
        if turn.intent in IT_INTENTS and turn.action in (Action.ANSWER, Action.ESCALATE):
            if turn.intent != topic:
                topic, answers, shown = turn.intent, 0, set()
            answers += turn.action == Action.ANSWER
            shown.update(turn.sources)
    return topic, answers, frozenset(shown), platform


def decide(text: str, route: Route, history: Sequence[Turn] = (), *, threshold: float = CLARIFY_THRESHOLD) -> Decision:
    """Choose the action for ``text`` given its route and the conversation so far.

    Args:
        text: The user's normalised, redacted message.
        route: The router's verdict.
        history: Earlier turns of this conversation, oldest first.
        threshold: Below this confidence an IT intent is clarified, not answered.
    """
    if looks_like_injection(text):
        return Decision(Action.REJECT, "out_of_scope", max(route.confidence, 0.99), "prompt injection")
    if looks_like_abuse(text):
        return Decision(Action.REJECT, "out_of_scope", max(route.confidence, 0.99), "harmful request")

    platform = detect_platform(text)
    topic, answers, shown, history_platform = _current_topic(history)
    if topic is not None:
        new_topic = route.intent in IT_INTENTS and route.intent != topic and route.confidence >= threshold
        words = len(text.split())
        if _SOLVED.search(text) and not new_topic:
            return Decision(Action.CLARIFY, "greeting", route.confidence, "solved", follow_up=True)
        if platform and words <= 8 and not new_topic:
            return Decision(Action.ANSWER, topic, route.confidence, "platform follow-up", platform=platform,
                            follow_up=True)
        if _FAILED.search(text) and not new_topic and route.intent not in ("human_request", "out_of_scope"):
            if answers >= MAX_ANSWERS_BEFORE_ESCALATION:
                return Decision(Action.ESCALATE, topic, route.confidence, "repeated failure", follow_up=True)
            return Decision(Action.ANSWER, topic, route.confidence, "next steps", follow_up=True,
                            platform=platform or history_platform, exclude=shown)

    urgent = urgent_intent(text, route) or (route.intent if route.urgent and route.confidence >= threshold else None)
    if urgent:
        return Decision(Action.ESCALATE, urgent, route.confidence, "needs a human now", platform=platform)
    action = default_action(route.intent)
    if action in (Action.ANSWER, Action.REJECT) and route.confidence < threshold:
        return Decision(Action.CLARIFY, route.intent, route.confidence, "low confidence", platform=platform)
    return Decision(action, route.intent, route.confidence, route.intent, platform=platform or history_platform)

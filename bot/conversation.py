"""The conversation use cases behind every door (Slack listeners, the web chat). They know storage and the engine,
not Slack or HTTP.

Each function opens its own short transactions (never across the engine or a
Slack call: on SQLite a write transaction holds the database lock).
"""

from __future__ import annotations

import difflib
import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Callable, Iterable
from weakref import WeakKeyDictionary

from sqlalchemy import select

from answers.engine import Answer, AnswerEngine
from answers.policy import Turn
from answers.router import Route
from answers.taxonomy import IT_INTENTS, topic_label
from storage import repository as repo
from storage.choices import ConversationState, EscalationStatus
from storage.models import Conversation, Escalation, KnownIssue, Message
from storage.types import utcnow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

__all__ = ["mention_key", "slack_thread", "web_key", "is_web", "WEB_TEAM", "Question", "Reply", "claim_event",
           "answer_question", "answer_with_topic", "conversation_summary", "relay_target_for_agent",
           "record_agent_message", "owns_conversation", "question_asked", "start_conversation", "find_conversation_id",
           "give_feedback", "Escalated", "open_escalation", "escalation_posted", "Update", "updates_since",
           "KnownIssueNotice", "known_topic", "known_duration", "post_known_issue", "clear_known_issue",
           "current_known_issues", "known_issue_for"]

HISTORY_TURNS = 10
WEB_PREFIX = "web:"
WEB_TEAM = "web"  # team and channel of every web conversation: the key alone identifies one


def mention_key(thread_ts: str, user_id: str) -> str:
    """The conversation key of @mentions in a channel thread: one conversation per person in a shared thread.

    Without the user, a colleague who mentions the bot in someone else's thread would join that person's
    conversation: their words stored under the other person, relayed to the other person's escalation.
    """
    return f"{thread_ts}/{user_id}"


def slack_thread(key: str) -> str | None:
    """The Slack thread ``ts`` of a conversation key (``None`` for a slash command, which has no thread)."""
    if key.startswith("slash:"):
        return None
    return key.partition("/")[0]


def web_key(token: str) -> str:
    """The conversation key of a web chat conversation; Slack keys are timestamps, so the two never collide."""
    return f"{WEB_PREFIX}{token}"


def is_web(key: str) -> bool:
    """True for the key of a web chat conversation (nothing about it can be posted to Slack but the escalation)."""
    return key.startswith(WEB_PREFIX)


@dataclass(frozen=True, slots=True)
class Question:
    """A message from an employee, with where it came from."""

    team_id: str
    channel_id: str
    thread_ts: str  # the conversation key: a Slack thread ts, or see mention_key and "slash:"
    user_id: str
    source: str  # dm | slash | mention | console | web
    text: str
    message_ts: str | None = None  # the Slack message that asked (None for slash commands, buttons, the console)


@dataclass(slots=True)
class Reply:
    """What to do with a question: show an answer, or relay it to the agent who owns the conversation."""

    kind: str  # "answer" | "relay"
    conversation_id: int
    message_id: int | None = None
    answer: Answer | None = None
    relay_channel: str | None = None
    relay_thread_ts: str | None = None
    relay_text: str | None = None
    known_issue: "KnownIssueNotice | None" = None  # an outage notice in force for the answer's topic


def claim_event(sessions: "sessionmaker[Session]", event_id: str) -> bool:
    """Record a Slack event id; False when it was seen before (a redelivery)."""
    with sessions.begin() as session:
        return repo.mark_event_processed(session, event_id)


def _history(session: "Session", conversation_id: int) -> list[Turn]:
    turns = []
    for message in repo.recent_turns(session, conversation_id, limit=HISTORY_TURNS):
        role = "assistant" if message.role in ("assistant", "agent") else "user"
        turns.append(Turn(role=role, text=message.text, intent=message.intent, action=message.action,
                          sources=tuple(message.sources or ())))
    return turns


def answer_question(engine: AnswerEngine, sessions: "sessionmaker[Session]", question: Question, *,
                    route: Route | None = None, model: str | None = None,
                    on_token: Callable[[str], None] | None = None) -> Reply:
    """Answer ``question`` in its conversation, or hand it to the agent who claimed the conversation."""
    with sessions.begin() as session:
        conversation, new = repo.open_conversation(
            session, team_id=question.team_id, channel_id=question.channel_id, thread_ts=question.thread_ts,
            user_id=question.user_id, source=question.source)
        conversation_id = conversation.id
        if conversation.state == ConversationState.HANDED_TO_HUMAN:
            escalation = repo.active_escalation(session, conversation_id)
            if escalation is not None and escalation.channel_message_ts:
                stored = repo.append_message(session, conversation_id=conversation_id, role="user", text=question.text,
                                             slack_ts=question.message_ts)
                return Reply(kind="relay", conversation_id=conversation_id, relay_channel=escalation.channel_id,
                             relay_thread_ts=escalation.channel_message_ts, relay_text=stored.text)
        history = [] if new else _history(session, conversation_id)
    answer = engine.answer(question.text, history, route=route, on_token=on_token)
    with sessions.begin() as session:
        repo.append_message(session, conversation_id=conversation_id, role="user", text=answer.text,
                            intent=answer.intent, confidence=answer.confidence, touch=False,
                            slack_ts=question.message_ts)
        stored = repo.append_message(
            session, conversation_id=conversation_id, role="assistant", text=answer.answer, intent=answer.intent,
            confidence=answer.confidence, action=answer.action, reason=answer.reason,
            sources=[s.id for s in answer.sources],
            latency_ms=answer.latency_ms, model=model or answer.generated_by)
        message_id = stored.id
    return Reply(kind="answer", conversation_id=conversation_id, message_id=message_id, answer=answer,
                 known_issue=known_issue_for(sessions, answer.intent))


def owns_conversation(sessions: "sessionmaker[Session]", user_id: str, *, conversation_id: int | None = None,
                      message_id: int | None = None) -> bool:
    """True when ``user_id`` started the conversation, named by its id or by one of its messages.

    Button values come back from Slack as the client sent them, so a user can replay another user's ids.
    """
    query = select(Conversation.user_id)
    if message_id is not None:
        query = query.join(Message, Message.conversation_id == Conversation.id).where(Message.id == int(message_id))
    else:
        query = query.where(Conversation.id == int(conversation_id))
    with sessions.begin() as session:
        return session.scalar(query) == user_id


def question_asked(sessions: "sessionmaker[Session]", answer_id: int) -> tuple[str, str, str] | None:
    """Where the question the answer ``answer_id`` replied to was asked: (source, channel, Slack ts), if known."""
    with sessions.begin() as session:
        found = repo.asked_in(session, answer_id)
        if found is None:
            return None
        conversation, slack_ts = found
        return str(conversation.source), conversation.channel_id, slack_ts


def answer_with_topic(engine: AnswerEngine, sessions: "sessionmaker[Session]", conversation_id: int,
                      intent: str) -> tuple[Question, Route] | None:
    """Re-ask the conversation's last question with the topic the user picked from a clarify prompt."""
    with sessions.begin() as session:
        conversation = session.get(Conversation, conversation_id)
        if conversation is None:
            return None
        questions = [t for t in repo.recent_turns(session, conversation_id, limit=HISTORY_TURNS) if t.role == "user"]
        text = questions[-1].text if questions else f"I need help with {intent.replace('_', ' ')}"
        question = Question(team_id=conversation.team_id, channel_id=conversation.channel_id,
                            thread_ts=conversation.thread_ts, user_id=conversation.user_id,
                            source=str(conversation.source), text=text)
    return question, Route.certain(intent)


def conversation_summary(sessions: "sessionmaker[Session]", conversation_id: int, *, limit: int = 6) -> tuple[str, str | None]:
    """A short transcript of the conversation for the helpdesk, and its latest IT intent."""
    with sessions.begin() as session:
        turns = repo.recent_turns(session, conversation_id, limit=limit)
    lines, intent = [], None
    for message in turns:
        who = {"user": "User", "assistant": "Bot", "agent": "Agent"}.get(str(message.role), str(message.role))
        text = message.text if len(message.text) <= 300 else message.text[:297] + "…"
        lines.append(f"{who}: {text}")
        if message.role == "assistant" and message.intent not in (None, "greeting", "vague", "out_of_scope"):
            intent = message.intent
    return "\n".join(lines) or "(no messages yet)", intent


def relay_target_for_agent(sessions: "sessionmaker[Session]", *, channel_id: str,
                           thread_ts: str) -> tuple[int, str, str, str] | None:
    """For an agent's reply in an escalation thread: (conversation id, user, channel, thread) to relay to."""
    with sessions.begin() as session:
        escalation = repo.find_escalation_by_message(session, channel_id=channel_id, message_ts=thread_ts)
        if escalation is None or escalation.status != EscalationStatus.CLAIMED:
            return None
        conversation = escalation.conversation
        return conversation.id, conversation.user_id, conversation.channel_id, conversation.thread_ts


def record_agent_message(sessions: "sessionmaker[Session]", conversation_id: int, text: str) -> str:
    """Store an agent's relayed reply (redacted) and return the stored text."""
    with sessions.begin() as session:
        return repo.append_message(session, conversation_id=conversation_id, role="agent", text=text).text


def save_kb_draft(sessions: "sessionmaker[Session]", escalation_id: int) -> int | None:
    """Store the agents' replies of a resolved escalation as a draft article; return the draft id."""
    with sessions.begin() as session:
        escalation = session.get(Escalation, escalation_id)
        if escalation is None:
            return None
        turns = repo.recent_turns(session, escalation.conversation_id, limit=50)
        replies = [t.text for t in turns if t.role == "agent"]
        if not replies:
            return None
        questions = [t for t in turns if t.role == "user"]
        intents = [t.intent for t in turns if t.role == "assistant" and t.intent]
        title = questions[0].text[:120] if questions else f"Escalation {escalation_id}"
        body = "\n\n".join(replies)
        draft = repo.create_kb_draft(session, escalation_id=escalation_id, title=title, body=body,
                                     intent=intents[-1] if intents else None)
        return draft.id


def start_conversation(sessions: "sessionmaker[Session]", *, team_id: str, channel_id: str, key: str, user_id: str,
                       source: str) -> int:
    """Open (or find) the conversation with this key before its first question; its id."""
    with sessions.begin() as session:
        conversation, _new = repo.open_conversation(session, team_id=team_id, channel_id=channel_id, thread_ts=key,
                                                    user_id=user_id, source=source)
        return conversation.id


def find_conversation_id(sessions: "sessionmaker[Session]", *, team_id: str, channel_id: str, key: str,
                         user_id: str) -> int | None:
    """The id of ``user_id``'s conversation with this key; None if there is none or it is someone else's."""
    with sessions.begin() as session:
        conversation = repo.find_conversation(session, team_id=team_id, channel_id=channel_id, thread_ts=key)
        if conversation is None or conversation.user_id != user_id:
            return None
        return conversation.id


def give_feedback(sessions: "sessionmaker[Session]", *, conversation_id: int, message_id: int, user_id: str,
                  kind: str) -> bool:
    """Record ``user_id``'s verdict (``solved``, ``helpful``, ``not_helpful``) on an answer of their conversation.

    False (nothing stored) when the message is not an answer in that conversation: ids come from the client.
    """
    with sessions.begin() as session:
        message = session.get(Message, int(message_id))
        if message is None or message.conversation_id != conversation_id or message.role != "assistant":
            return False
        repo.record_feedback(session, message_id=message.id, user_id=user_id, kind=kind)
        return True


@dataclass(frozen=True, slots=True)
class Escalated:
    """An escalation as opened: what the helpdesk post shows (redacted, as stored) and who to tell."""

    escalation_id: int
    created: bool  # False: the conversation already had an open one (post nothing new)
    urgency: str
    summary: str
    details: str | None
    intent: str | None
    user_id: str
    channel_id: str
    key: str  # the conversation key (see Question.thread_ts)


def open_escalation(sessions: "sessionmaker[Session]", *, conversation_id: int, requester: str, urgency: str,
                    details: str | None) -> Escalated | None:
    """Hand the conversation to the helpdesk (once); None when it is not ``requester``'s conversation.

    The summary and details come back as stored, that is redacted: a form's raw value may hold a password, and
    the helpdesk channel is read by the whole team.
    """
    summary, intent = conversation_summary(sessions, conversation_id)
    with sessions.begin() as session:
        conversation = session.get(Conversation, conversation_id)
        if conversation is None or conversation.user_id != requester:
            return None
        escalation, created = repo.open_escalation(session, conversation_id=conversation_id, summary=summary,
                                                   urgency=urgency, details=details)
        return Escalated(escalation_id=escalation.id, created=created, urgency=str(escalation.urgency),
                         summary=escalation.summary, details=escalation.details, intent=intent,
                         user_id=conversation.user_id, channel_id=conversation.channel_id, key=conversation.thread_ts)


def escalation_posted(sessions: "sessionmaker[Session]", escalation_id: int, *, channel_id: str,
                      message_ts: str) -> None:
    """Remember the helpdesk post of an escalation: agents' replies in its thread are relayed by it."""
    with sessions.begin() as session:
        repo.set_escalation_message(session, escalation_id, channel_id=channel_id, message_ts=message_ts)


@dataclass(frozen=True, slots=True)
class Update:
    """What happened in a conversation since a client last looked: agents' replies (where its request stands is
    ``web.escalations.latest_request``)."""

    messages: list[tuple[int, str, str]]  # (message id, role, redacted text), oldest first


def updates_since(sessions: "sessionmaker[Session]", conversation_id: int, *, after_id: int = 0,
                  limit: int = 50) -> Update:
    """The agents' messages after message ``after_id`` (for a page to poll)."""
    with sessions.begin() as session:
        rows = session.scalars(
            select(Message).where(Message.conversation_id == conversation_id, Message.id > after_id,
                                  Message.role == "agent").order_by(Message.id).limit(limit)).all()
        return Update(messages=[(m.id, str(m.role), m.text) for m in rows])


KNOWN_ISSUE_HOURS = 8  # a notice nobody clears ends by itself
MAX_KNOWN_ISSUE_DAYS = 7
MAX_KNOWN_ISSUE_CHARS = 500
KNOWN_ISSUES_TTL_S = 10.0  # answers read the notices from memory; another process's change shows within this
_DURATION = re.compile(r"(\d+)\s*(m|min|mins|minutes?|h|hrs?|hours?|d|days?)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class KnownIssueNotice:
    """An outage notice as every door shows it; ``text`` is stored redacted."""

    id: int
    topic: str
    text: str
    created_by: str  # a Slack user id, or "cli:<name>"
    created_at: datetime
    expires_at: datetime

    @classmethod
    def of(cls, issue: KnownIssue) -> "KnownIssueNotice":
        return cls(id=issue.id, topic=issue.topic, text=issue.text, created_by=issue.created_by,
                   created_at=issue.created_at, expires_at=issue.expires_at)


_notices: "WeakKeyDictionary[sessionmaker[Session], tuple[float, tuple[KnownIssueNotice, ...]]]" = WeakKeyDictionary()
_notices_lock = threading.Lock()


def known_topic(name: str, kb_topics: Iterable[str] = ()) -> tuple[str | None, list[str]]:
    """The topic ``name`` means (a built-in topic by name or label, or an article's own topic), or close matches.

    Returns:
        The topic as answers name it and no suggestions, or None and up to three close topic names.
    """
    wanted = " ".join(name.split()).lower()
    names = {**{t.lower(): t for t in kb_topics}, **{topic_label(t).lower(): t for t in IT_INTENTS},
             **{t: t for t in IT_INTENTS}, **{t.replace("_", " "): t for t in IT_INTENTS}}
    for candidate in (wanted, wanted.replace("-", "_"), wanted.replace(" ", "_")):
        if candidate in names:
            return names[candidate], []
    close = difflib.get_close_matches(wanted, list(names), n=6, cutoff=0.6)
    return None, list(dict.fromkeys(names[c] for c in close))[:3]


def known_duration(text: str) -> timedelta | None:
    """``90m``, ``2h``, ``3 hours``, ``1d``... as a duration of at most a week; None when it is not one."""
    match = _DURATION.fullmatch(text.strip())
    if not match or int(match.group(1)) < 1:
        return None
    unit = {"m": "minutes", "h": "hours", "d": "days"}[match.group(2)[0].lower()]
    return min(timedelta(**{unit: int(match.group(1))}), timedelta(days=MAX_KNOWN_ISSUE_DAYS))


def post_known_issue(sessions: "sessionmaker[Session]", *, topic: str, text: str, created_by: str,
                     lasts: timedelta | None = None) -> KnownIssueNotice:
    """Post the notice of ``topic`` (replacing the one in force), ending after ``lasts`` (default 8 hours)."""
    now = utcnow()
    with sessions.begin() as session:
        issue = repo.add_known_issue(session, topic=topic, text=text[:MAX_KNOWN_ISSUE_CHARS], created_by=created_by,
                                     expires_at=now + (lasts or timedelta(hours=KNOWN_ISSUE_HOURS)), now=now)
        notice = KnownIssueNotice.of(issue)
    _forget_notices(sessions)
    return notice


def clear_known_issue(sessions: "sessionmaker[Session]", *, which: str, cleared_by: str,
                      kb_topics: Iterable[str] = ()) -> list[KnownIssueNotice]:
    """End the notice numbered ``which`` (``3``, ``#3``) or of the topic it names; those ended (maybe none)."""
    number = which.strip().removeprefix("#")
    topic = None if number.isdigit() else (known_topic(which, kb_topics)[0] or which.strip())
    with sessions.begin() as session:
        ended = [KnownIssueNotice.of(i) for i in repo.clear_known_issues(
            session, topic=topic, issue_id=int(number) if number.isdigit() else None, cleared_by=cleared_by)]
    _forget_notices(sessions)
    return ended


def current_known_issues(sessions: "sessionmaker[Session]") -> list[KnownIssueNotice]:
    """The notices in force now, oldest first: read from the database at most every ten seconds per process."""
    now = time.monotonic()
    with _notices_lock:
        cached = _notices.get(sessions)
    if cached is None or now - cached[0] > KNOWN_ISSUES_TTL_S:
        with sessions.begin() as session:
            cached = (now, tuple(KnownIssueNotice.of(i) for i in repo.active_known_issues(session)))
        with _notices_lock:
            _notices[sessions] = cached
    at = utcnow()  # a notice read while in force ends on time, cached or not
    return [notice for notice in cached[1] if notice.expires_at > at]


def known_issue_for(sessions: "sessionmaker[Session]", topic: str | None) -> KnownIssueNotice | None:
    """The notice in force for ``topic`` (an answer's intent), if any."""
    if not topic:
        return None
    return next((n for n in current_known_issues(sessions) if n.topic == topic), None)


def _forget_notices(sessions: "sessionmaker[Session]") -> None:
    with _notices_lock:
        _notices.pop(sessions, None)

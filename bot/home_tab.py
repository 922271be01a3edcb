"""The App Home tab and its two forms, as Block Kit: pure functions from plain data to views.

The Home tab shows the known issues in force (outages the helpdesk posted), topic buttons (each opens a short
"describe the problem" form whose text starts a conversation in the user's DM with the bot), the user's requests
with the helpdesk and where each stands (with a button to add detail to an active one), and, for agents, the queue
of requests nobody has claimed yet. The ``action_id`` and ``callback_id`` constants are shared with the listeners.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from answers.taxonomy import IT_INTENTS, topic_label
from bot.blocks import ticket_link
from bot.mrkdwn import escape
from bot.suggestions import QUESTIONS

__all__ = ["ACTION_TOPIC", "ACTION_ADD_DETAIL", "ACTION_CLAIM", "VIEW_ASK", "VIEW_DETAIL", "MAX_TOPICS",
           "MAX_REQUESTS", "MAX_QUEUE", "MAX_KNOWN_ISSUES", "DEFAULT_TOPICS", "NO_REQUESTS", "ACTIVE", "Request",
           "home_topics", "one_line",
           "home_view", "ask_modal", "detail_modal"]

ACTION_TOPIC = "itbot_home_topic"  # each button of the topics block: ``_0``, ``_1``... (unique in a block)
ACTION_ADD_DETAIL = "itbot_home_add_detail"
ACTION_CLAIM = "itbot_home_claim"
VIEW_ASK = "itbot_home_ask_view"
VIEW_DETAIL = "itbot_home_detail_view"
MAX_TOPICS = 8
MAX_REQUESTS = 10
MAX_QUEUE = 15  # with the requests and the headings, well under Slack's 100 blocks of a Home view
MAX_KNOWN_ISSUES = 10
DEFAULT_TOPICS = ("password_reset", "account_lockout", "mfa", "wifi", "vpn", "email", "printer", "software_install")
NO_REQUESTS = ("You have no requests with the helpdesk yet. When I can't solve something, press *Talk to a human* "
               "under my answer and it shows up here.")
ACTIVE = ("open", "claimed")
_STATES = {"open": ":red_circle: Open, waiting for an agent", "claimed": ":large_yellow_circle: Claimed by <@{agent}>",
           "resolved": ":white_check_mark: Resolved by <@{agent}>", "cancelled": ":heavy_minus_sign: Cancelled"}


@dataclass(frozen=True, slots=True)
class Request:
    """One escalation as the Home tab shows it; its text is stored redacted."""

    id: int
    status: str
    summary: str
    created_at: datetime
    user_id: str = ""
    agent_id: str | None = None  # who claimed it, or resolved it
    urgency: str = "normal"
    ticket_id: str | None = None  # its ticket in the helpdesk's ticket system, once opened
    ticket_url: str | None = None

    @classmethod
    def of(cls, escalation: Any) -> Request:
        """From a loaded ``storage.models.Escalation`` (its conversation joined)."""
        created = getattr(escalation, "ticket_status", None) == "created"
        return cls(id=escalation.id, status=str(escalation.status), summary=escalation.summary,
                   created_at=escalation.created_at, user_id=escalation.conversation.user_id,
                   agent_id=escalation.resolved_by or escalation.claimed_by, urgency=str(escalation.urgency),
                   ticket_id=escalation.ticket_id if created else None,
                   ticket_url=escalation.ticket_url if created else None)


def home_topics(most_asked: Sequence[str] = (), *, limit: int = MAX_TOPICS) -> list[str]:
    """Up to ``limit`` built-in topics: the most asked first, then the defaults, each once."""
    topics: list[str] = []
    for topic in (*most_asked, *DEFAULT_TOPICS):
        if topic in IT_INTENTS and topic not in topics:
            topics.append(topic)
    return topics[:limit]


def one_line(summary: str, *, limit: int = 150) -> str:
    """The first thing the user said in a transcript summary ("User: ..." lines), on one line."""
    lines = [line.strip() for line in summary.splitlines() if line.strip()]
    first = next((line for line in lines if line.startswith("User:")), lines[0] if lines else "")
    text = first.removeprefix("User:").strip() or "(no summary)"
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _section(text: str, accessory: dict | None = None, block_id: str | None = None) -> dict:
    block: dict[str, Any] = {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}
    if accessory:
        block["accessory"] = accessory
    if block_id:
        block["block_id"] = block_id
    return block


def _context(text: str) -> dict:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text[:3000]}]}


def _header(text: str) -> dict:
    return {"type": "header", "text": {"type": "plain_text", "text": text, "emoji": True}}


def _button(text: str, action_id: str, value: str, style: str | None = None) -> dict:
    button = {"type": "button", "text": {"type": "plain_text", "text": text[:75], "emoji": True},
              "action_id": action_id, "value": value}
    if style:
        button["style"] = style
    return button


def _when(at: datetime) -> str:
    """A date each reader sees in their own time zone, with a UTC fallback."""
    return f"<!date^{int(at.timestamp())}^{{date_short_pretty}} at {{time}}|{at:%Y-%m-%d %H:%M} UTC>"


def _request_blocks(request: Request) -> list[dict]:
    state = _STATES.get(request.status, request.status).format(agent=request.agent_id)
    detail = _button("Add detail", ACTION_ADD_DETAIL, str(request.id)) if request.status in ACTIVE else None
    return [_section(f"*#{request.id}* · {state}\n>{escape(one_line(request.summary))}", detail,
                     block_id=f"request_{request.id}"),
            _context(f"Opened {_when(request.created_at)}" + (
                f" · Ticket {ticket_link(request.ticket_id, request.ticket_url)}" if request.ticket_id else ""))]


def _queue_blocks(request: Request) -> list[dict]:
    text = (f"*#{request.id}* from <@{request.user_id}> · urgency *{escape(request.urgency)}*\n"
            f">{escape(one_line(request.summary))}")
    return [_section(text, _button("Claim", ACTION_CLAIM, str(request.id), "primary"), block_id=f"queue_{request.id}"),
            _context(f"Waiting since {_when(request.created_at)}")]


def home_view(*, helpdesk_name: str, topics: Sequence[str], requests: Sequence[Request],
              queue: Sequence[Request] | None = None, notice: str | None = None,
              known_issues: Sequence[str] = ()) -> dict:
    """The Home tab: the known issues in force (``known_issues``, lines of mrkdwn), an intro, topic buttons, the
    user's requests and, for agents (``queue`` given), the queue."""
    blocks: list[dict] = []
    if notice:
        blocks.append(_section(f":information_source: {escape(notice)}"))
    if known_issues:
        blocks += [_header("Known issues"), *[_section(line) for line in known_issues[:MAX_KNOWN_ISSUES]],
                   {"type": "divider"}]
    blocks += [_header(f"IT help from {helpdesk_name}"[:150]),
               _section("Pick a topic and describe the problem: I'll answer in our direct messages, where you can "
                        "follow up or press *Talk to a human* to reach a person.")]
    if topics:
        buttons = [_button(topic_label(topic), f"{ACTION_TOPIC}_{i}", topic) for i, topic in enumerate(topics)]
        blocks.append({"type": "actions", "block_id": "topics", "elements": buttons[:MAX_TOPICS]})
    blocks += [{"type": "divider"}, _header("My requests")]
    if requests:
        for request in requests[:MAX_REQUESTS]:
            blocks += _request_blocks(request)
    else:
        blocks.append(_section(NO_REQUESTS))
    if queue is not None:
        blocks += [{"type": "divider"}, _header("Open queue")]
        if queue:
            for request in queue[:MAX_QUEUE]:
                blocks += _queue_blocks(request)
        else:
            blocks.append(_section("Nothing is waiting: every request has an agent."))
    return {"type": "home", "blocks": blocks}


def ask_modal(topic: str) -> dict:
    """The short "describe the problem" form a topic button opens."""
    example = QUESTIONS.get(topic, f"I need help with {topic_label(topic).lower()}")
    return {
        "type": "modal",
        "callback_id": VIEW_ASK,
        "private_metadata": json.dumps({"t": topic}),
        "title": {"type": "plain_text", "text": "Ask IT"},
        "submit": {"type": "plain_text", "text": "Ask"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            _section(f"*{escape(topic_label(topic))}*: what is going on? I'll answer in our direct messages."),
            {"type": "input", "block_id": "problem", "label": {"type": "plain_text", "text": "Describe the problem"},
             "element": {"type": "plain_text_input", "action_id": "problem", "multiline": True, "max_length": 2000,
                         "placeholder": {"type": "plain_text", "text": f"e.g. {example}"[:150]}}},
        ],
    }


def detail_modal(request: Request) -> dict:
    """The form that adds detail to an active request; the text goes to its helpdesk thread."""
    return {
        "type": "modal",
        "callback_id": VIEW_DETAIL,
        "private_metadata": json.dumps({"e": request.id}),
        "title": {"type": "plain_text", "text": f"Add to request #{request.id}"[:24]},
        "submit": {"type": "plain_text", "text": "Send to IT"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            _section(f"The helpdesk will see this in the request's thread:\n>{escape(one_line(request.summary))}"),
            {"type": "input", "block_id": "detail", "label": {"type": "plain_text", "text": "What should they know?"},
             "element": {"type": "plain_text_input", "action_id": "detail", "multiline": True, "max_length": 2000}},
        ],
    }

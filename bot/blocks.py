"""Block Kit builders: pure functions from plain data to Slack payloads.

``action_id`` and ``callback_id`` constants live here and are shared with the
listeners, so the two cannot drift apart.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import TYPE_CHECKING, Any, Sequence

from bot.mrkdwn import escape, split_text, to_mrkdwn
from answers.compose import offered_choices
from answers.taxonomy import topic_label

if TYPE_CHECKING:
    from tickets import TicketState

__all__ = [
    "ACTION_FEEDBACK", "FEEDBACK_SOLVED", "FEEDBACK_NOT_HELPFUL", "feedback_block", "not_helpful_message",
    "greeting_message", "PROMPTS_TITLE",
    "ACTION_SOLVED", "ACTION_NOT_HELPFUL", "ACTION_HUMAN", "ACTION_TOPIC", "ACTION_CLAIM", "ACTION_RESOLVE",
    "ACTION_RATE", "ACTION_KB_DRAFT", "VIEW_ESCALATE", "answer_messages", "thinking_message", "escalation_modal", "escalation_post",
    "ticket_line", "ticket_link", "ticket_message",
    "rating_message", "help_blocks", "status_blocks", "plain_message", "URGENCIES", "known_issue_line",
    "known_issues_message", "known_issue_posted", "known_issues_cleared", "unknown_topic_message",
]

ACTION_FEEDBACK = "itbot_feedback"  # Slack's feedback_buttons: 👍 solved, 👎 not helpful
FEEDBACK_SOLVED, FEEDBACK_NOT_HELPFUL = "solved", "not_helpful"  # the "k" of each button's value
ACTION_SOLVED = "itbot_solved"  # the buttons of answers posted before feedback_buttons; still handled
ACTION_NOT_HELPFUL = "itbot_not_helpful"
ACTION_HUMAN = "itbot_talk_to_human"
ACTION_TOPIC = "itbot_topic"
ACTION_CLAIM = "itbot_claim"
ACTION_RESOLVE = "itbot_resolve"
ACTION_RATE = "itbot_rate"
ACTION_KB_DRAFT = "itbot_kb_draft"
VIEW_ESCALATE = "itbot_escalate_view"
PROMPTS_TITLE = "Colleagues often ask about"
URGENCIES = (("low", "Low: whenever you can"), ("normal", "Normal: today"), ("high", "High: I'm blocked"),
             ("critical", "Critical: security or many people affected"))

Message = dict[str, Any]
_SLACK_USER = re.compile(r"[UW][A-Z0-9]{2,}")


def _section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _button(text: str, action_id: str, value: str, style: str | None = None) -> dict:
    button = {"type": "button", "text": {"type": "plain_text", "text": text, "emoji": True}, "action_id": action_id,
              "value": value[:2000]}
    if style:
        button["style"] = style
    return button


def thinking_message() -> Message:
    return {"text": ":hourglass_flowing_sand: Looking into it…"}


def plain_message(text: str) -> Message:
    return {"text": to_mrkdwn(text)[:3900], "blocks": [_section(piece) for piece in split_text(to_mrkdwn(text))][:50]}


def _source_link(source: str | tuple[str, str | None]) -> str:
    """A source's title, linked to the article's intranet page when the knowledge base gives one."""
    title, url = (source, None) if isinstance(source, str) else source
    return f"<{url}|{escape(title).replace('|', '-')}>" if url else escape(title)


def _posted_by(who: str) -> str:
    """A Slack user id as a mention; anyone else (``cli:alice``) by name."""
    return f"<@{who}>" if _SLACK_USER.fullmatch(who) else escape(who.removeprefix("cli:"))


def _clock(at: datetime) -> str:
    """A time each reader sees in their own time zone, with a UTC fallback."""
    return f"<!date^{int(at.timestamp())}^{{time}}|{at:%H:%M} UTC>"


def _day_and_clock(at: datetime) -> str:
    """A date and time each reader sees in their own time zone, with a UTC fallback."""
    return f"<!date^{int(at.timestamp())}^{{date_short_pretty}} {{time}}|{at:%Y-%m-%d %H:%M} UTC>"


def known_issue_line(*, text: str, created_at: datetime, created_by: str, topic: str | None = None) -> str:
    """The notice of a known issue, as shown above an answer (and, with its ``topic``, on the Home tab)."""
    about = f"*{escape(topic_label(topic))}:* " if topic else ""
    return (f":rotating_light: *Known issue:* {about}{escape(text)} "
            f"(since {_clock(created_at)}, posted by {_posted_by(created_by)})")[:3000]


def known_issues_message(lines: Sequence[str]) -> Message:
    """The answer to ``/itsupport known``: the notices in force (``lines``), or that there are none."""
    if not lines:
        return plain_message("No known issues right now.")
    text = "\n".join(["*Known issues*", *lines[:20]])
    return {"text": text[:3900], "blocks": [_section(text[:3000])]}


def known_issue_posted(*, issue_id: int, topic: str, expires_at: datetime) -> Message:
    """What an agent who posted a known issue is told."""
    text = (f":white_check_mark: Known issue #{issue_id} posted for *{escape(topic_label(topic))}* until "
            f"{_day_and_clock(expires_at)}: "
            f"answers on this topic now start with it. `/itsupport known clear {issue_id}` ends it sooner.")
    return {"text": text, "blocks": [_section(text)]}


def known_issues_cleared(*, which: str, cleared: Sequence[tuple[int, str]]) -> Message:
    """What an agent who cleared known issues (``cleared``: their ids and topics) is told."""
    if not cleared:
        return plain_message(f"No known issue in force for `{escape(which[:64])}`.")
    ended = ", ".join(f"#{issue_id} ({escape(topic_label(topic))})" for issue_id, topic in cleared)
    return plain_message(f":white_check_mark: Cleared known issue {ended}.")


def known_issue_announcement(*, text: str, topic: str, created_by: str, expires_at: datetime) -> Message:
    """The status channel's post when an agent posts a known issue (``text`` as stored: redacted)."""
    line = (f":rotating_light: *Known issue: {escape(topic_label(topic))}.* {escape(text)} "
            f"(posted by {_posted_by(created_by)}, until {_day_and_clock(expires_at)} unless cleared sooner)")[:3000]
    return {"text": line, "blocks": [_section(line)]}


def known_issue_ended(*, topic: str, cleared_by: str) -> Message:
    """The status channel's post when an agent clears a known issue."""
    line = (f":white_check_mark: *Resolved: {escape(topic_label(topic))}.* The known issue was cleared by "
            f"{_posted_by(cleared_by)}.")
    return {"text": line, "blocks": [_section(line)]}


def with_note(message: Message, note: str) -> Message:
    """``message`` with one more line at the end."""
    return {"text": f"{message['text']}\n{note}", "blocks": [*message.get("blocks", []), _section(note[:3000])]}


def unknown_topic_message(name: str, close: Sequence[str]) -> Message:
    """One line for a known issue's topic that is neither a built-in topic nor an article's."""
    hint = f" Did you mean {', '.join(f'`{c}`' for c in close)}?" if close else " Use a topic such as `vpn` or `email`."
    return plain_message(f"Unknown topic `{escape(name[:64])}`.{hint}")


def answer_messages(*, answer: str, action: str, sources: Sequence[str | tuple[str, str | None]],
                    choices: Sequence[str], message_id: int, conversation_id: int, notice: str | None = None,
                    known_issue: str | None = None) -> list[Message]:
    """One or more messages (a long answer is split) with the sources and the buttons on the last one.

    ``known_issue`` (a :func:`known_issue_line`) goes above the answer: the steps may not help while it lasts.
    """
    pieces = split_text(to_mrkdwn(answer))
    messages: list[Message] = [{"text": piece[:3900], "blocks": [_section(piece)]} for piece in pieces]
    if known_issue:
        messages[0]["blocks"].insert(0, _section(known_issue))
        messages[0]["text"] = f"{known_issue}\n{messages[0]['text']}"[:3900]
    last = messages[-1]["blocks"]
    if notice:
        last.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"_{escape(notice)}_"}]})
    if sources:
        titles = "; ".join(_source_link(source) for source in sources)
        last.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f":books: Sources: {titles}"[:3000]}]})
    value = json.dumps({"m": message_id, "c": conversation_id})
    shown, prompt = offered_choices(action, choices)
    topics = [_button(topic_label(c)[:75], f"{ACTION_TOPIC}_{i}", json.dumps({"c": conversation_id, "i": c}))
              for i, c in enumerate(shown)]
    if action == "clarify" and topics:
        last.append({"type": "actions", "elements": topics + [_button("Talk to a human", ACTION_HUMAN, value)]})
        return messages  # a question back to the user: nothing to rate yet
    if action in ("answer", "escalate"):
        if prompt:  # the other likely topics under an answer; the closest article's under "no article about this"
            last.append({"type": "context", "elements": [{"type": "mrkdwn", "text": prompt}]})
        last.append({"type": "actions", "elements": topics + [
            _button("Talk to a human", ACTION_HUMAN, value, "danger" if action == "escalate" else None)]})
    last.append(feedback_block(message_id=message_id, conversation_id=conversation_id))
    return messages


def feedback_block(*, message_id: int, conversation_id: int) -> dict:
    """Slack's 👍 / 👎 under an answer (a ``feedback_buttons`` element in a ``context_actions`` block)."""
    def side(text: str, label: str, kind: str) -> dict:
        return {"text": {"type": "plain_text", "text": text}, "accessibility_label": label,
                "value": json.dumps({"m": message_id, "c": conversation_id, "k": kind})}

    return {"type": "context_actions", "elements": [{
        "type": "feedback_buttons", "action_id": ACTION_FEEDBACK,
        "positive_button": side("👍", "Solved: this answer fixed it", FEEDBACK_SOLVED),
        "negative_button": side("👎", "Not helpful", FEEDBACK_NOT_HELPFUL)}]}


def not_helpful_message(conversation_id: int) -> Message:
    """What a 👎 gets: an offer to reach a person, with the button that opens the escalation form."""
    text = "Thanks for telling me. Try describing it differently, or talk to a person from the helpdesk."
    return {"text": text, "blocks": [_section(text), {"type": "actions", "elements": [
        _button("Talk to a human", ACTION_HUMAN, json.dumps({"c": conversation_id}), "primary")]}]}


def greeting_message(*, user_id: str, helpdesk_name: str) -> Message:
    """The one-time hello in the Messages tab."""
    text = (f":wave: Hi <@{user_id}>! I'm the IT assistant of {escape(helpdesk_name)}. Tell me what's wrong in a "
            "message here, or pick one of the suggestions, and I'll walk you through the fix. Press *Talk to a "
            "human* on any answer to reach a person.")
    return {"text": text, "blocks": [_section(text)]}


def escalation_modal(*, conversation_id: int, summary: str) -> dict:
    """The form that opens when someone presses "Talk to a human"."""
    return {
        "type": "modal",
        "callback_id": VIEW_ESCALATE,
        "private_metadata": json.dumps({"c": conversation_id}),
        "title": {"type": "plain_text", "text": "Talk to a human"},
        "submit": {"type": "plain_text", "text": "Send to IT"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            _section(f"The helpdesk will see this conversation:\n>{escape(summary)[:2500]}"),
            {"type": "input", "block_id": "urgency", "label": {"type": "plain_text", "text": "How urgent is it?"},
             "element": {"type": "static_select", "action_id": "urgency",
                         "initial_option": {"text": {"type": "plain_text", "text": URGENCIES[1][1]}, "value": "normal"},
                         "options": [{"text": {"type": "plain_text", "text": label}, "value": value}
                                     for value, label in URGENCIES]}},
            {"type": "input", "block_id": "details", "optional": True,
             "label": {"type": "plain_text", "text": "Anything else the helpdesk should know?"},
             "element": {"type": "plain_text_input", "action_id": "details", "multiline": True, "max_length": 2000}},
        ],
    }


def requester(user_id: str) -> str:
    """Who asked, as the helpdesk sees it: a Slack mention, or the web chat visitor (signed in by SSO or not)."""
    if user_id.startswith("sso:"):
        return f"web chat user *{escape(user_id[4:])}*"
    if user_id.startswith("web:"):
        return "a web chat visitor"
    return f"<@{user_id}>"


def ticket_link(ticket_id: str, url: str | None) -> str:
    """A ticket's id, linked to the ticket when its system gave a link."""
    label = escape(ticket_id).replace("|", "-")
    return f"<{url}|{label}>" if url and url.startswith(("https://", "http://")) else label


def ticket_line(ticket: "TicketState") -> str:
    """Where the escalation's ticket stands, for the helpdesk post."""
    if ticket.status == "created" and ticket.id:
        return f":ticket: Ticket {ticket_link(ticket.id, ticket.url)}"
    if ticket.status == "failed":
        return (f":warning: Ticket failed: {escape(ticket.error or 'refused')}. It is not retried: open it by hand "
                "(the conversation is in this thread)")
    if ticket.attempts and ticket.next_attempt_at:
        return (f":hourglass: Ticket pending (attempt {ticket.attempts} failed: {escape(ticket.error or '?')}; "
                f"next try at {_clock(ticket.next_attempt_at)})")
    return ":hourglass: Ticket pending"


def escalation_post(*, escalation_id: int, user_id: str, intent: str | None, urgency: str, summary: str,
                    details: str | None, status: str, agent_id: str | None = None,
                    ticket: "TicketState | None" = None) -> Message:
    """The escalation as the helpdesk channel sees it, for each status; ``ticket``: its ticket, when tickets are on."""
    label = topic_label(intent) if intent else "Unclassified"
    lines = [f"*Escalation #{escalation_id}* from {requester(user_id)} · {label} · urgency *{urgency}*",
             f">{escape(summary)[:1500]}"]
    if details:
        lines.append(f"*Details:* {escape(details)[:1000]}")
    state = {"open": ":red_circle: Open", "claimed": f":large_yellow_circle: Claimed by <@{agent_id}>",
             "resolved": f":white_check_mark: Resolved by <@{agent_id}>",
             "cancelled": ":heavy_minus_sign: Cancelled"}[status]
    blocks = [_section("\n".join(lines)), {"type": "context", "elements": [{"type": "mrkdwn", "text": state}]}]
    if ticket is not None:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": ticket_line(ticket)[:3000]}]})
    value = str(escalation_id)
    buttons = []
    if status == "open":
        buttons.append(_button("Claim", ACTION_CLAIM, value, "primary"))
    if status in ("open", "claimed"):
        buttons.append(_button("Resolve", ACTION_RESOLVE, value))
    if status == "resolved":
        buttons.append(_button("Save as KB draft", ACTION_KB_DRAFT, value))
    if buttons:
        blocks.append({"type": "actions", "elements": buttons})
    return {"text": f"Escalation #{escalation_id} ({status}) from {requester(user_id)}", "blocks": blocks}


def ticket_message(*, escalation_id: int, ticket_id: str, url: str | None) -> Message:
    """What the employee is told in their thread when their request became a ticket."""
    text = (f":ticket: Your request #{escalation_id} is now ticket {ticket_link(ticket_id, url)} in the helpdesk's "
            "ticket system. Quote it if you contact them another way.")
    return {"text": text, "blocks": [_section(text)]}


def rating_message(escalation_id: int) -> Message:
    return {"text": "Your request was resolved. How did we do?", "blocks": [
        _section(":white_check_mark: Your request was resolved. How did we do? (1 = poor, 5 = great)"),
        {"type": "actions", "elements": [_button(str(n), f"{ACTION_RATE}_{n}", json.dumps({"e": escalation_id, "r": n}))
                                         for n in range(1, 6)]},
    ]}


def help_blocks(helpdesk_name: str) -> Message:
    text = (f"*I'm the IT assistant of {escape(helpdesk_name)}.* Ask me anything about passwords, locked accounts, "
            "MFA, Wi-Fi, VPN, email, phishing, printers, software, slow computers, hardware, updates, files, work "
            "phones, meetings and access requests.\n"
            "• `/itsupport <question>`: a private answer right here\n"
            "• Send me a direct message for a conversation you can follow up in\n"
            "• `/itsupport status`: your open requests with the helpdesk\n"
            "• `/itsupport known`: outages the helpdesk already knows about\n"
            "• Press *Talk to a human* on any answer to reach a person")
    return {"text": text, "blocks": [_section(text)]}


def status_blocks(escalations: Sequence[Any]) -> Message:
    if not escalations:
        return plain_message("You have no open requests with the helpdesk.")
    lines = [f"• #{e.id} · {e.status.value if hasattr(e.status, 'value') else e.status} · {escape(e.summary)[:150]}"
             for e in escalations[:20]]
    return plain_message("*Your open requests:*\n" + "\n".join(lines))

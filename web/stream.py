"""One answer as Server-Sent Events: the model's pieces as they come (``token``), then the answer (``answer``),
or the notice that the message went to the helpdesk agent (``relay``), or an apology (``error``).

The engine runs on a thread of its own and hands its pieces over through a queue, so a slow model never holds
the server's event loop; in kb mode the answer is ready in milliseconds and is computed in place.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from answers.compose import offered_choices
from answers.taxonomy import topic_label
from bot.conversation import Question, Reply, answer_question
from bot.helpdesk import relay_to_agent

if TYPE_CHECKING:
    from answers.router import Route
    from web.config import WebContext

__all__ = ["sse", "answer_events", "answer_payload"]

log = logging.getLogger(__name__)
_DONE = object()


def sse(event: str, data: dict[str, Any]) -> bytes:
    """One Server-Sent Event; ``data`` as one line of JSON."""
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def answer_payload(reply: Reply) -> dict[str, Any]:
    """What the page shows of an answer: its text, sources, topic choices, the id its feedback names and the known
    issue of its topic (an outage notice the helpdesk posted)."""
    answer = reply.answer
    assert answer is not None
    choices, prompt = offered_choices(answer.action, answer.choices)
    return {"message_id": reply.message_id, "text": answer.answer, "action": answer.action,
            "sources": [{"title": s.title} for s in answer.sources],
            "choices": [{"topic": c, "label": topic_label(c)} for c in choices],
            "choices_prompt": prompt,
            "notice": answer.notice, "offer_human": answer.action == "escalate",
            "known_issue": _known_issue(reply)}


def _known_issue(reply: Reply) -> dict[str, Any] | None:
    """The outage notice in force for the answer's topic (shown above it), or None."""
    issue = reply.known_issue
    if issue is None:
        return None
    return {"topic": issue.topic, "label": topic_label(issue.topic), "text": issue.text,
            "since": issue.created_at.isoformat(), "until": issue.expires_at.isoformat()}


def answer_events(context: "WebContext", question: Question, *, route: "Route | None" = None,
                  visitor_name: str = "Web chat visitor") -> Iterator[bytes]:
    """Answer ``question`` and yield the events; never raises (an unexpected error is logged with a reference)."""
    pieces: queue.Queue[Any] = queue.Queue()
    outcome: list[Any] = []

    def work() -> None:
        try:
            outcome.append(answer_question(context.engine, context.sessions, question, route=route,
                                           on_token=pieces.put if context.engine.answer_mode != "kb" else None))
        except Exception as error:  # noqa: BLE001 - reported to the visitor as a reference, logged in full
            outcome.append(error)
        finally:
            pieces.put(_DONE)

    if context.engine.answer_mode == "kb":
        work()
    else:
        threading.Thread(target=work, name="itbot-web-answer", daemon=True).start()
    while (piece := pieces.get()) is not _DONE:
        yield sse("token", {"text": piece})
    result = outcome[0]
    if isinstance(result, Exception):
        yield sse("error", {"error": _apology(result)})
        return
    if result.kind == "relay":
        yield _relayed(context, result, visitor_name)
        return
    yield sse("answer", answer_payload(result))


def _relayed(context: "WebContext", reply: Reply, who: str) -> bytes:
    """An agent owns the conversation: their Slack thread gets the message (stored already)."""
    if context.slack is None:
        return sse("relay", {"text": "Your message was saved for the helpdesk agent handling your request."})
    try:
        relay_to_agent(context.slack, channel=reply.relay_channel or "", thread_ts=reply.relay_thread_ts or "",
                       who=who, text=reply.relay_text or "")
    except Exception as error:  # noqa: BLE001 - Slack failed: the message is stored, the visitor is told
        return sse("error", {"error": _apology(error)})
    return sse("relay", {"text": "Sent to the helpdesk agent handling your request."})


def _apology(error: Exception) -> str:
    reference = uuid.uuid4().hex[:8]
    log.error("web answer failed (reference %s): %s", reference, error.__class__.__name__, exc_info=error)
    return (f"Sorry, something went wrong on my side (reference {reference}). Please try again, or use "
            "\"Talk to a human\".")

"""The digest as Block Kit (for the digest channel) and as plain text (notification fallback, terminal).

Questions quoted from users are escaped, so a ``<!channel>`` someone typed is
shown, never broadcast.
"""

from __future__ import annotations

from typing import Any

from bot.digest import Digest, duration, percent
from bot.mrkdwn import escape
from answers.taxonomy import INTENT_LABELS
from storage.stats import OperationsStats

__all__ = ["digest_message", "digest_text"]

_QUESTION_CHARS = 200


def _title(digest: Digest) -> str:
    return f"IT helpdesk digest · {digest.day:%a %d %b %Y}"


def _run_caption(digest: Digest) -> str:
    run = digest.run
    if run is None:
        return "held-out questions"
    model = "knowledge base only" if run.mode == "kb" else run.model + (f" + {run.adapter}" if run.adapter else "")
    return f"{run.n} held-out questions · {run.mode} mode ({model}) · took {duration(run.duration_s)}"


def _operations(digest: Digest) -> list[tuple[str, str]]:
    ops = digest.ops
    rated = ops.feedback_up + ops.feedback_down
    satisfaction = ("n/a" if ops.satisfaction_average is None
                    else f"{ops.satisfaction_average:.1f} / 5 ({ops.satisfaction_count} ratings)")
    return [
        ("Conversations", f"{ops.conversations:,}"),
        ("Answered without a human", f"{percent(ops.deflection_rate)} ({ops.answered_without_human:,})"),
        ("Escalations opened / claimed / resolved",
         f"{ops.escalations_opened} / {ops.escalations_claimed} / {ops.escalations_resolved}"),
        ("Median time to claim", duration(ops.median_time_to_claim_s)),
        ("Satisfaction", satisfaction),
        ("Helpful / not helpful", f"{ops.feedback_up} / {ops.feedback_down}"
         + (f" ({ops.feedback_up / rated:.0%} helpful)" if rated else "")),
        ("Knowledge-base gaps", f"{ops.kb_gaps} IT question{'s' if ops.kb_gaps != 1 else ''} no article covered"),
    ] + _model(ops)


def _model(ops: OperationsStats) -> list[tuple[str, str]]:
    """How often the grounding guard withheld a model answer: only where a model writes answers."""
    written = ops.model_answers + ops.model_withheld
    if not written:
        return []
    return [("Model answers withheld", f"{ops.model_withheld} of {written} by the grounding guard (curated steps "
             "shown)")]


def _top_intents(digest: Digest) -> str:
    return ", ".join(f"{INTENT_LABELS.get(intent, intent)} ({n})" for intent, n in digest.ops.top_intents) or "none"


def _questions(digest: Digest, *, gaps: bool = False) -> list[str]:
    asked = digest.ops.kb_gap_questions if gaps else digest.ops.not_helpful_questions
    return [question if len(question) <= _QUESTION_CHARS else question[:_QUESTION_CHARS - 1] + "…"
            for question in asked[:5]]


def _fields(pairs: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"type": "mrkdwn", "text": f"*{label}*\n{value}"} for label, value in pairs][:10]


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text[:3000]}]}


def digest_message(digest: Digest) -> dict[str, Any]:
    """``chat.postMessage`` arguments (text and blocks) for the digest channel."""
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": _title(digest)[:150]}}]
    if digest.error is not None:
        blocks.append(_section(f":x: *The nightly evaluation failed* ({escape(digest.error)}). Tonight's answer-"
                               "quality figures are missing; the bot's log has the details under that reference."))
    else:
        blocks.append(_section("*Answer quality*"))
        blocks.append({"type": "section", "fields": _fields(
            [(line.spec.label, f"{line.spec.format(line.value)}  ({line.change})") for line in digest.lines])})
        blocks.append(_context(escape(_run_caption(digest))))
        if digest.warnings:
            blocks.append(_section("\n".join(f":warning: *{escape(w)}*" for w in digest.warnings)))
    blocks.append({"type": "divider"})
    blocks.append(_section("*Last 24 hours*"))
    blocks.append({"type": "section", "fields": _fields(_operations(digest))})
    blocks.append(_section(f"*Top intents:* {escape(_top_intents(digest))}"))
    questions = _questions(digest)
    if questions:
        blocks.append(_section("*Answers marked Not helpful* (candidates for new KB articles):\n"
                               + "\n".join(f"• {escape(q)}" for q in questions)))
    gaps = _questions(digest, gaps=True)
    if gaps:
        blocks.append(_section("*Questions no article covers* (write one and drop it in the KB folder):\n"
                               + "\n".join(f"• {escape(q)}" for q in gaps)))
    return {"text": escape(_summary(digest))[:3900], "blocks": blocks[:50]}


def _summary(digest: Digest) -> str:
    if digest.error is not None:
        return f"{_title(digest)}: the nightly evaluation failed ({digest.error})"
    figures = ", ".join(f"{line.spec.label.lower()} {line.spec.format(line.value)}" for line in digest.lines[:3])
    warning = f" · {len(digest.warnings)} warning(s)" if digest.warnings else ""
    return f"{_title(digest)}: {figures}{warning}"


def digest_text(digest: Digest) -> str:
    """The whole digest as plain text, for a terminal."""
    lines = [_title(digest), ""]
    if digest.error is not None:
        lines.append(f"The nightly evaluation FAILED: {digest.error}")
    else:
        lines.append(f"Answer quality ({_run_caption(digest)})")
        width = max(len(line.spec.label) for line in digest.lines) if digest.lines else 0
        lines.extend(f"  {line.spec.label:<{width}}  {line.spec.format(line.value):>9}  {line.change}"
                     for line in digest.lines)
        lines.extend(f"  WARNING: {warning}" for warning in digest.warnings)
    lines += ["", "Last 24 hours"]
    operations = _operations(digest)
    width = max(len(label) for label, _ in operations)
    lines.extend(f"  {label:<{width}}  {value}" for label, value in operations)
    lines.append(f"  {'Top intents':<{width}}  {_top_intents(digest)}")
    questions = _questions(digest)
    if questions:
        lines.append("  Answers marked Not helpful:")
        lines.extend(f"    - {q}" for q in questions)
    gaps = _questions(digest, gaps=True)
    if gaps:
        lines.append("  Questions no article covers:")
        lines.extend(f"    - {q}" for q in gaps)
    return "\n".join(lines)

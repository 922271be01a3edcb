"""The console chat: the same answer pipeline as Slack, in a terminal.

Useful for trying the bot without a Slack workspace and for scripted checks
(``echo "i forgot my password" | itbot chat``).
"""

from __future__ import annotations

from typing import TextIO

from answers.engine import Answer, AnswerEngine
from answers.policy import Turn
from answers.taxonomy import topic_label

__all__ = ["run_console_chat", "format_answer"]

_BYE = {"exit", "quit", "bye", ":q"}


def format_answer(answer: Answer) -> str:
    """Plain-text rendering: the reply, its sources and the offered choices."""
    lines = [answer.answer]
    if answer.notice:
        lines.append(f"({answer.notice})")
    if answer.sources:
        lines.append("Sources: " + "; ".join(source.title for source in answer.sources))
    if answer.choices:
        lines.append("Topics: " + " | ".join(f"[{i}] {topic_label(c)}" for i, c in enumerate(answer.choices, 1)))
    if answer.action == "escalate":
        lines.append("(In Slack, the 'Talk to a human' button opens a ticket with the helpdesk.)")
    return "\n".join(lines)


def run_console_chat(engine: AnswerEngine, *, stdin: TextIO, stdout: TextIO, interactive: bool) -> int:
    """Read questions line by line until end of input or ``exit``; return the number answered.

    A reply to a clarifying question may be the number of an offered topic.
    """
    history: list[Turn] = []
    offered: list[str] = []
    answered = 0
    if interactive:
        stdout.write("IT helpdesk assistant. Ask anything about passwords, Wi-Fi, VPN, MFA, printers or software.\n"
                     "Type 'exit' or press Ctrl-D to leave.\n")
    while True:
        if interactive:
            stdout.write("\nyou> ")
            stdout.flush()
        line = stdin.readline()
        if not line:
            break
        text = line.strip()
        if not text:
            continue
        if text.lower() in _BYE:
            break
        if text.isdigit() and offered and 1 <= int(text) <= len(offered):
            text = f"I need help with {topic_label(offered[int(text) - 1]).lower()}"
        answer = engine.answer(text, history)
        history.append(Turn(role="user", text=answer.text))
        history.append(Turn(role="assistant", text=answer.answer, intent=answer.intent, action=answer.action,
                            sources=tuple(s.id for s in answer.sources)))
        offered = answer.choices
        answered += 1
        prefix = "bot> " if interactive else ""
        stdout.write(f"{prefix}{format_answer(answer)}\n")
        stdout.flush()
    if interactive:
        stdout.write("\nBye!\n")
    return answered

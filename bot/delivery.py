"""Post answers to Slack: a sign of work first when a model writes the answer, then the final Block Kit message(s).

Runs on the worker, never on Bolt's listener threads.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Callable

from slack_sdk.errors import SlackApiError, SlackRequestError

from bot import blocks, working
from bot.conversation import Question, Reply, answer_question, is_web, slack_thread
from bot.helpdesk import relay_to_agent
from bot.posting import post_metadata, post_once
from bot.streaming import EditedPreview, NativeStream

if TYPE_CHECKING:
    from slack_sdk import WebClient

    from bot.services import Services
    from answers.router import Route

__all__ = ["deliver_answer", "apologise", "post_in_place", "respond", "notify_user", "wait_seconds_text"]

log = logging.getLogger(__name__)
Preview = EditedPreview | NativeStream
NOT_A_MEMBER = frozenset({"not_in_channel", "channel_not_found"})


def post_in_place(client: "WebClient", *, channel: str, thread_ts: str | None, user_id: str, ephemeral: bool,
                  message: dict[str, Any], response_url: str | None = None, post_id: str | None = None) -> str | None:
    """Post ``message`` in the thread (or ephemerally to the user); return its ts when it has one.

    A slash command may come from a channel the bot has not joined, where ``chat.postEphemeral`` fails: the
    command's ``response_url`` (good for five posts in 30 minutes) reaches the user there.
    """
    if ephemeral:
        try:
            client.chat_postEphemeral(channel=channel, user=user_id, **message)
        except SlackApiError as error:
            if not response_url or error.response.get("error") not in NOT_A_MEMBER:
                raise
            respond(response_url, message)
        return None
    return post_once(client, channel=channel, thread_ts=thread_ts, post_id=post_id, **message)["ts"]


def respond(response_url: str, message: dict[str, Any]) -> None:
    """Send ``message`` ephemerally through a response URL; raise :class:`SlackRequestError` if Slack refuses."""
    from slack_sdk.webhook import WebhookClient

    result = WebhookClient(response_url, timeout=10).send_dict({"response_type": "ephemeral", **message})
    if result.status_code != 200:
        raise SlackRequestError(f"response_url refused the message (HTTP {result.status_code}: {result.body[:80]})")


def deliver_answer(services: "Services", client: "WebClient", question: Question, *, reply_channel: str,
                   reply_thread_ts: str | None, ephemeral: bool = False, route: "Route | None" = None,
                   response_url: str | None = None, notice: str | None = None, post_id: str | None = None,
                   on_stream_started: Callable[[str], None] | None = None) -> Reply:
    """Answer ``question`` and post the result where the user asked.

    While a model may write the answer (in kb mode it is ready in milliseconds, and more Slack calls would only
    slow it), the user sees that the bot is working: the thread status in a DM, the 👀 on a question in a
    channel (given in every mode), else a "Looking into it…" placeholder; the model's text streams into a reply
    as it comes (Slack's native streaming, or an edited message where Slack refuses it) and the final answer
    replaces it. ``notice`` is shown under the answer (an apology for a late one); ``post_id`` marks the posts
    (``<post_id>-placeholder`` for the placeholder or a posted preview, ``<post_id>-0``, ``-1``... for the
    answer) so a later attempt can find them; a natively streamed message cannot carry them until the final
    answer replaces it, so ``on_stream_started(ts)`` is told its ts as soon as Slack started it (it must not raise).
    """
    if question.source == "mention" and question.message_ts and not ephemeral:
        working.react(client, channel=reply_channel, ts=question.message_ts, name=working.SEEN)
    status, preview = _show_working(services, client, question, reply_channel=reply_channel,
                                    reply_thread_ts=reply_thread_ts, ephemeral=ephemeral, post_id=post_id,
                                    on_stream_started=on_stream_started)
    started = time.monotonic()
    try:
        reply = _answer_into(services, client, question, preview, status, reply_channel=reply_channel,
                             reply_thread_ts=reply_thread_ts, ephemeral=ephemeral, route=route,
                             response_url=response_url, notice=notice, post_id=post_id)
    except Exception:
        shown = preview.close() if preview else None
        if shown:  # the apology the worker posts replaces it: one reply, not "Looking into it…" forever
            _withdraw(client, channel=reply_channel, ts=shown)
        elif status and reply_thread_ts:
            working.clear_status(client, channel=reply_channel, thread_ts=reply_thread_ts)
        raise
    if reply.kind == "relay":
        return reply
    answer = reply.answer
    assert answer is not None
    metrics = services.metrics
    metrics.requests.labels(source=question.source, action=answer.action).inc()
    metrics.intents.labels(intent=answer.intent).inc()
    if answer.reason == "ungrounded":
        metrics.ungrounded.inc()
    metrics.engine_seconds.observe(answer.latency_ms / 1000)
    metrics.answer_seconds.observe(time.monotonic() - started)
    log.info("answered %s in %s: intent=%s action=%s %.1f ms", question.source, reply_channel, answer.intent,
             answer.action, answer.latency_ms)
    return reply


def _show_working(services: "Services", client: "WebClient", question: Question, *, reply_channel: str,
                  reply_thread_ts: str | None, ephemeral: bool,
                  post_id: str | None,
                  on_stream_started: Callable[[str], None] | None = None) -> tuple[bool, "Preview | None"]:
    """The thread status (True) and where the model's text streams; nothing in kb mode.

    In a DM the thread status shows the bot is working, then the answer streams natively into a reply; in a
    channel thread the 👀 on the question does, then the answer streams. Elsewhere (or when Slack refuses the
    status) a "Looking into it…" placeholder is posted and edited as the answer grows.
    """
    if ephemeral or services.engine.answer_mode == "kb":
        return False, None

    def post(text: str) -> str:  # a reply in the thread (the fallback of a refused stream)
        return post_once(client, channel=reply_channel, thread_ts=reply_thread_ts,
                         post_id=post_id and f"{post_id}-placeholder", text=text)["ts"]

    status = bool(question.source == "dm" and reply_thread_ts
                  and working.set_status(client, channel=reply_channel, thread_ts=reply_thread_ts))
    if reply_thread_ts and (status or question.source == "mention"):
        return status, NativeStream(client, channel=reply_channel, thread_ts=reply_thread_ts,
                                    user_id=question.user_id, team_id=question.team_id, post=post,
                                    on_start=on_stream_started)
    placeholder = post_once(client, channel=reply_channel, thread_ts=reply_thread_ts,
                            post_id=post_id and f"{post_id}-placeholder", **blocks.thinking_message())["ts"]
    return False, EditedPreview(client, channel=reply_channel, ts=placeholder)


def _answer_into(services: "Services", client: "WebClient", question: Question, preview: "Preview | None",
                 status: bool, *, reply_channel: str, reply_thread_ts: str | None, ephemeral: bool,
                 route: "Route | None", response_url: str | None, notice: str | None = None,
                 post_id: str | None = None) -> Reply:
    """Answer (or relay) ``question`` and post it, the first message in place of the preview or placeholder."""
    reply = answer_question(services.engine, services.sessions, question, route=route, on_token=preview)
    shown = preview.close() if preview else None
    if reply.kind == "relay":
        relay_to_agent(client, channel=reply.relay_channel or "", thread_ts=reply.relay_thread_ts or "",
                       who=f"<@{question.user_id}>", text=reply.relay_text or "")
        if shown:
            client.chat_delete(channel=reply_channel, ts=shown)
        elif status and reply_thread_ts:  # no reply follows in the user's thread to clear it
            working.clear_status(client, channel=reply_channel, thread_ts=reply_thread_ts)
        return reply
    answer = reply.answer
    assert answer is not None
    messages = blocks.answer_messages(answer=answer.answer, action=answer.action,
                                      sources=[(s.title, s.url) for s in answer.sources], choices=answer.choices,
                                      message_id=reply.message_id or 0, conversation_id=reply.conversation_id,
                                      notice=" ".join(n for n in (notice, answer.notice) if n) or None,
                                      known_issue=_known_issue_line(reply))
    for index, message in enumerate(messages):
        if index == 0 and shown:
            marked = {"metadata": post_metadata(f"{post_id}-0")} if post_id else {}
            client.chat_update(channel=reply_channel, ts=shown, **marked, **message)
        else:
            post_in_place(client, channel=reply_channel, thread_ts=reply_thread_ts, user_id=question.user_id,
                          ephemeral=ephemeral, message=message, response_url=response_url,
                          post_id=post_id and f"{post_id}-{index}")
    return reply


def _known_issue_line(reply: Reply) -> str | None:
    issue = reply.known_issue
    if issue is None:
        return None
    return blocks.known_issue_line(text=issue.text, created_at=issue.created_at, created_by=issue.created_by)


def _withdraw(client: "WebClient", *, channel: str, ts: str) -> None:
    try:
        client.chat_delete(channel=channel, ts=ts)
    except Exception as error:  # Slack may be what failed: the apology still follows
        log.warning("could not remove the placeholder %s: %s", ts, error.__class__.__name__)


def notify_user(client: "WebClient", *, user_id: str, channel: str, thread_ts: str, message: dict[str, Any]) -> None:
    """Tell a user about their conversation (``thread_ts`` is its key): in its thread, or by DM for a slash command.

    A web chat conversation gets nothing in Slack: its page reads the stored updates.
    """
    if is_web(thread_ts):
        return
    thread = slack_thread(thread_ts)
    if thread is None:
        dm = client.conversations_open(users=user_id)["channel"]["id"]
        post_once(client, channel=dm, **message)
    else:
        post_once(client, channel=channel, thread_ts=thread, **message)


def apologise(client: "WebClient", *, channel: str, thread_ts: str | None, user_id: str, reference: str,
              ephemeral: bool = False, response_url: str | None = None) -> None:
    """The short apology for an unexpected error, with the reference id that is in the log."""
    text = (f":warning: Sorry, something went wrong on my side (reference `{reference}`). Please try again, or "
            "press *Talk to a human* on any answer.")
    try:
        post_in_place(client, channel=channel, thread_ts=thread_ts, user_id=user_id, ephemeral=ephemeral,
                      message={"text": text}, response_url=response_url)
    except Exception:  # the apology itself must never raise
        log.exception("could not deliver the apology (ref %s)", reference)


def wait_seconds_text(seconds: float) -> str:
    seconds = max(1, round(seconds))
    return f"{seconds} second{'s' if seconds != 1 else ''}" if seconds < 90 else f"{round(seconds / 60)} minutes"


"""Show a model's answer growing in Slack while it is written.

Two ways behind one interface: call the object with each safe piece of text (on the model's worker thread, so
it stays cheap and never raises), then :meth:`close` it and replace the message (its ts) with the final answer.

* :class:`NativeStream` uses Slack's AI-app streaming message (``chat.startStream`` on the first text,
  ``chat.appendStream`` at most once per ``every_s``, ``chat.stopStream`` at the end). When Slack refuses to
  start a stream (an older workspace, a missing scope) or ends one early (streams expire after about five
  minutes: ``message_not_in_streaming_state``), it goes on as an :class:`EditedPreview` of the same message, or
  of a message it posts.
* :class:`EditedPreview` posts a message (or takes a placeholder) and edits it with ``chat.update``.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Callable

from slack_sdk.errors import SlackApiError

from bot.mrkdwn import to_mrkdwn
from bot.working import slack_error

if TYPE_CHECKING:
    from slack_sdk import WebClient

__all__ = ["EditedPreview", "NativeStream", "PREVIEW_EVERY_S", "APPEND_EVERY_S"]

log = logging.getLogger(__name__)
PREVIEW_EVERY_S = 1.0  # chat.update is Tier 3 (about 50 a minute): one edit a second per answer
APPEND_EVERY_S = 0.5  # chat.appendStream is Tier 4 (100+ a minute)
MAX_APPEND_CHARS = 12_000  # Slack's limit on markdown_text


class EditedPreview:
    """A message edited as the answer grows, at most once per ``every_s``.

    The message is the placeholder (``ts``) or one that ``start(text)`` posts with the first preview and whose
    ts it returns (when the thread status shows the bot is working, or a native stream was refused).
    ``show_now`` makes the first preview go out at once instead of ``every_s`` after creation.
    """

    def __init__(self, client: "WebClient", *, channel: str, ts: str | None = None,
                 start: Callable[[str], str] | None = None, every_s: float = PREVIEW_EVERY_S,
                 show_now: bool = False) -> None:
        self._client, self._channel, self._every, self._start = client, channel, every_s, start
        self.ts = ts
        self._text = ""
        self._last = time.monotonic() - (every_s if show_now else 0.0)
        self._lock = threading.Lock()
        self._closed = False
        self.updates = 0

    def __call__(self, piece: str) -> None:
        with self._lock:
            self._text += piece
            now = time.monotonic()
            if self._closed or now - self._last < self._every or not self._text.strip():
                return
            self._last = now
            text = to_mrkdwn(self._text)[:3000] + " …"
            try:
                if self.ts is None and self._start is not None:
                    self.ts = self._start(text)
                elif self.ts is not None:
                    self._client.chat_update(channel=self._channel, ts=self.ts, text=text)
                self.updates += 1
            except Exception as error:  # a failed preview must never stop the answer
                log.warning("streaming preview update failed: %s", slack_error(error))

    def close(self) -> str | None:
        """No more previews; the ts of the preview message, if one was posted."""
        with self._lock:
            self._closed = True
            return self.ts


class NativeStream:
    """The answer streamed into one Slack message with ``chat.startStream`` / ``appendStream`` / ``stopStream``.

    ``recipient_user_id`` and ``recipient_team_id`` are always sent: Slack requires them for streams in
    channels. ``post(text)`` posts a message in the thread and returns its ts: the fallback when no stream can
    be started. ``on_start(ts)`` is told the stream's message as soon as Slack started it: ``chat.startStream``
    takes no metadata, so whoever must find a half-written answer after a crash records it there.
    """

    def __init__(self, client: "WebClient", *, channel: str, thread_ts: str, user_id: str, team_id: str,
                 post: Callable[[str], str], every_s: float = APPEND_EVERY_S,
                 on_start: Callable[[str], None] | None = None) -> None:
        self._client, self._channel, self._thread_ts, self._every = client, channel, thread_ts, every_s
        self._recipient = {"recipient_user_id": user_id, "recipient_team_id": team_id}
        self._post, self._on_start = post, on_start
        self.ts: str | None = None
        self._text = ""  # everything so far
        self._pending = ""  # not yet sent to Slack
        self._last = 0.0
        self._lock = threading.Lock()
        self._closed = False
        self.fallback: EditedPreview | None = None  # set once Slack refused or ended the stream
        self.appends = 0

    def __call__(self, piece: str) -> None:
        with self._lock:
            if self._closed:
                return
            self._text += piece
            if self.fallback is not None:
                self.fallback(piece)
                return
            self._pending += piece
            now = time.monotonic()
            if not self._pending.strip() or (self.ts is not None and now - self._last < self._every):
                return
            self._last = now
            self._send()

    def _send(self) -> None:
        text = self._pending[:MAX_APPEND_CHARS]
        try:
            if self.ts is None:
                self.ts = self._client.chat_startStream(channel=self._channel, thread_ts=self._thread_ts,
                                                        markdown_text=text, **self._recipient)["ts"]
            else:
                self._client.chat_appendStream(channel=self._channel, ts=self.ts, markdown_text=text)
            self._pending = self._pending[len(text):]
            self.appends += 1
        except SlackApiError as error:  # refused, or the stream ended: edit a message instead
            self._fall_back(slack_error(error))
            return
        except Exception as error:  # unreachable for a moment: the text stays pending for the next piece
            log.warning("streaming the answer failed for now: %s", slack_error(error))
            return
        if self.appends == 1 and self._on_start is not None:
            try:
                self._on_start(self.ts)
            except Exception as error:  # noqa: BLE001 - recording it is a safeguard; the answer goes on
                log.warning("could not record the streamed message %s: %s", self.ts, error.__class__.__name__)

    def _fall_back(self, reason: str) -> None:
        log.info("native streaming %s (%s); editing a message instead",
                 "refused" if self.ts is None else "ended early", reason)
        self.fallback = EditedPreview(self._client, channel=self._channel, ts=self.ts,
                                      start=None if self.ts else self._post, show_now=True)
        self.fallback(self._text)

    def close(self) -> str | None:
        """Stop the stream (nothing more is shown); the ts of the message to replace with the final answer."""
        with self._lock:
            self._closed = True
            if self.fallback is not None:
                return self.fallback.close()
            if self.ts is not None:
                try:
                    self._client.chat_stopStream(channel=self._channel, ts=self.ts)
                except Exception as error:  # expired or unreachable: the final chat.update still replaces it
                    log.info("stopping the stream failed (%s); the final answer replaces it", slack_error(error))
            return self.ts

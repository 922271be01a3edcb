"""Safe streaming of a growing generation: what may be shown while the model is still writing.

Both the local model service and the remote (OpenAI-compatible) client feed the text generated so far to a
:class:`SafeEmitter`, which passes the new, safe part to ``on_token``. Held back until safe: a trailing incomplete
character, a possible start of a stop sequence, and the last word (so a credential is masked before any of it is
shown). If masking would change text already shown, streaming stops; the final answer is checked again anyway.
"""

from __future__ import annotations

import logging
from typing import Callable, Sequence

from answers.redact import redact
from llm.postprocess import cut_at_stop

__all__ = ["SafeEmitter"]

log = logging.getLogger(__name__)


class SafeEmitter:
    """Turns "the whole generation so far" into safe pieces for ``on_token`` (``None``: nothing is shown)."""

    def __init__(self, on_token: Callable[[str], None] | None, *, stop: Sequence[str],
                 cancelled: Callable[[], bool] = lambda: False) -> None:
        self.on_token = on_token
        self.stop = tuple(s for s in stop if s)
        self.hold = max((len(s) for s in self.stop), default=1) - 1
        self.cancelled = cancelled
        self.emitted = ""
        self.stopped = False  # the generation reached a stop sequence: the caller should stop generating
        self.muted = on_token is None

    def update(self, text: str) -> None:
        """Show what is safe of ``text``, the whole generation so far."""
        cut = cut_at_stop(text, self.stop)
        if len(cut) < len(text):
            self.stopped = True
            self._emit(cut)
            return
        safe = text[:max(0, len(text) - self.hold)].rstrip("\ufffd")
        boundary = max(safe.rfind(" "), safe.rfind("\n"))
        self._emit(safe[:boundary + 1] if boundary >= 0 else "")

    def finish(self, text: str) -> None:
        """The generation ended with ``text``: show the rest (up to a stop sequence)."""
        if not self.stopped:
            self._emit(cut_at_stop(text, self.stop))

    def _emit(self, text: str) -> None:
        if self.muted or self.cancelled():
            return
        visible = redact(text).text
        if not visible.startswith(self.emitted):
            self.muted = True  # a mask would rewrite what is already shown
            return
        piece = visible[len(self.emitted):]
        if piece:
            self.emitted = visible
            try:
                self.on_token(piece)  # type: ignore[misc]
            except Exception:  # noqa: BLE001 - a failing progress callback must not kill the answer
                log.exception("on_token callback failed; streaming stops for this answer")
                self.muted = True

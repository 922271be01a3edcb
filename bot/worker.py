"""A bounded pool that runs slow work (answering, posting) off Bolt's listener threads.

Bolt acks each envelope before the listener runs, but it runs listeners on a
pool of 5 threads: a listener that blocks on generation delays the events
behind it. Listeners therefore only validate, de-duplicate and ``submit``.
"""

from __future__ import annotations

import logging
import threading
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable

__all__ = ["Worker", "Busy"]

log = logging.getLogger(__name__)


class Busy(Exception):
    """The worker's queue is full."""


class Worker:
    """Runs jobs on ``threads`` threads with at most ``capacity`` jobs waiting or running."""

    def __init__(self, *, threads: int = 4, capacity: int = 200) -> None:
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="itbot-worker")
        self._slots = threading.BoundedSemaphore(capacity)
        self._in_flight = 0
        self._lock = threading.Lock()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def submit(self, job: Callable[[], None], *, on_error: Callable[[str, BaseException], None] | None = None) -> Future:
        """Queue ``job``; raise :class:`Busy` when the queue is full.

        Unexpected errors are logged with a reference id and passed to ``on_error``.
        """
        if not self._slots.acquire(blocking=False):
            raise Busy()
        with self._lock:
            self._in_flight += 1

        def run() -> None:
            try:
                job()
            except BaseException as error:  # noqa: BLE001 - the worker must survive any job
                reference = uuid.uuid4().hex[:8]
                log.exception("job failed (ref %s)", reference)
                if on_error is not None:
                    try:
                        on_error(reference, error)
                    except Exception:
                        log.exception("error handler failed (ref %s)", reference)
            finally:
                with self._lock:
                    self._in_flight -= 1
                self._slots.release()

        return self._pool.submit(run)

    def shutdown(self, *, wait: bool = True, timeout: float | None = None) -> None:
        """Stop taking jobs and wait for the running ones."""
        self._pool.shutdown(wait=wait, cancel_futures=not wait)

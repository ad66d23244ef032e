"""Submissions waiting for the next group commit: any thread `put`s, one writer thread `take`s.

Both backends' writers use it: `put` never blocks on I/O and answers through a Future; `take` waits
for work, then `interval_s` more for company (so concurrent requests share one commit), and hands
over everything queued; `take_now` hands it over at once. After `close` (or `stop`) new submissions
fail with `LedgerUnavailable`.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from typing import Any

from genai_meter.ledger.model import LedgerUnavailable

Submission = tuple[list[Any], Future[list[bool]]]  # a writer's calls (ClickHouse: Rows; SQLite: insert params)


def refused(error: Exception) -> Future[list[bool]]:
    """A submission's Future failed with `error` (LedgerUnavailable, LedgerRowRejected: nothing queued)."""
    future: Future[list[bool]] = Future()
    future.set_exception(error)
    return future


class CommitQueue:
    """Thread-safe; `take` and `stop` belong to the writer thread, `take_now` to whoever commits."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._cond = threading.Condition()
        self._items: list[Submission] = []
        self._closing = False

    @property
    def closing(self) -> bool:
        return self._closing

    def put(self, calls: list[Any], future: Future[list[bool]] | None = None) -> Future[list[bool]]:
        """Queue `calls` for the next commit; the Future (`future`, or a new one) resolves to one
        new/duplicate bool per call."""
        future = future if future is not None else Future()
        with self._cond:
            if self._closing:
                return refused(LedgerUnavailable("the ledger writer is closed"))
            self._items.append((calls, future))
            if len(self._items) == 1:
                self._cond.notify()
        return future

    def close(self) -> None:
        """Refuse new submissions; the writer commits what is queued and stops."""
        with self._cond:
            self._closing = True
            self._cond.notify()

    def take(self, idle_s: float | None = None) -> tuple[list[Submission], bool]:
        """(everything queued, closing), after waiting for work (at most `idle_s`; None: until some
        arrives or the queue closes) and then `interval_s` for company."""
        with self._cond:
            if not self._items and not self._closing:
                self._cond.wait(idle_s)
            if self._items and not self._closing and self.interval_s > 0:
                self._cond.wait(self.interval_s)
            batch, self._items = self._items, []
            return batch, self._closing

    def take_now(self) -> list[Submission]:
        """Everything queued, without waiting (a thread that commits for the others)."""
        with self._cond:
            batch, self._items = self._items, []
            return batch

    def empty(self) -> bool:
        with self._cond:
            return not self._items

    def stop(self, message: str) -> None:
        """The writer is gone: close, and fail whatever is still queued (nothing waits forever)."""
        with self._cond:
            self._closing = True
            left, self._items = self._items, []
        for _, future in left:
            future.set_exception(LedgerUnavailable(message))

"""Bounds on the work one request may cause: a time limit, admission of heavy requests, export spool bytes.

- Every request gets a deadline (`reports.limits.request_seconds`; exports `export_seconds`, counted from
  admission): the thread's ledger queries stop when it passes (`genai_meter.ledger.deadline`) and the
  answer is a 504 naming the limit.
- Heavy requests (reports, exports, scans of a window) are admitted to at most `heavy_concurrent` at once;
  up to `heavy_queue` more wait at most `queue_seconds` for a slot; anything beyond is a 503 with
  Retry-After at once. Light requests (health, pages, a page of events) are never queued, and the WSGI
  server keeps threads for them beyond the heavy slots and the queue.
- Exports are written to a spool file before they are sent (the server's main loop sends the file, so a
  slow reader never holds a worker thread); files written and not yet sent hold at most `spool_mb` MiB.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from genai_meter.config import ReportLimitsConfig
from genai_meter.reports.service.params import ApiError

MIB = 1024 * 1024


class Busy(ApiError):
    """Too many heavy requests at once: 503 with Retry-After."""

    status = 503


class TimeLimitExceeded(ApiError):
    """The answer took longer than its time limit: 504."""

    status = 504


def time_limit_error(seconds: float, key: str) -> TimeLimitExceeded:
    return TimeLimitExceeded(f"the answer took longer than its time limit of {seconds:g} s (reports.limits.{key}); "
                             "ask for a shorter range, fewer groups or a longer step")


class Admission:
    """At most `concurrent` heavy requests run; at most `queue` wait (each up to `wait_s`); the rest are refused."""

    def __init__(self, concurrent: int, queue: int, wait_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.concurrent = concurrent
        self.queue = queue
        self.wait_s = wait_s
        self._clock = clock
        self._cond = threading.Condition()
        self.running = 0
        self.waiting = 0
        self.refused = 0  # requests answered 503 since start (queue full or waited too long)

    def acquire(self) -> None:
        """Take a slot, waiting in the queue when there is room; raises `Busy` otherwise."""
        with self._cond:
            if self.running < self.concurrent and not self.waiting:
                self.running += 1
                return
            if self.waiting >= self.queue:
                self.refused += 1
                raise Busy(f"busy: {self.running} heavy requests running and {self.waiting} waiting "
                           "(reports.limits.heavy_concurrent, heavy_queue); retry later")
            self.waiting += 1
            try:
                end = self._clock() + self.wait_s
                while self.running >= self.concurrent:
                    left = end - self._clock()
                    if left <= 0:
                        self.refused += 1
                        raise Busy(f"busy: no slot for a heavy request within {self.wait_s:g} s "
                                   "(reports.limits.queue_seconds); retry later")
                    self._cond.wait(left)
                self.running += 1
            finally:
                self.waiting -= 1

    def release(self) -> None:
        with self._cond:
            self.running -= 1
            self._cond.notify()


class SpoolBudget:
    """Bytes of exports written to spool files and not yet sent (or closed), at most `limit`."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self.held = 0

    def take(self, size: int) -> None:
        """Hold `size` more bytes; raises `Busy` when that would pass the limit."""
        with self._lock:
            if self.held + size > self.limit:
                raise Busy(f"busy: exports waiting to be sent hold {self.held // MIB} MiB (reports.limits.spool_mb "
                           f"is {self.limit // MIB}); retry later")
            self.held += size

    def give_back(self, size: int) -> None:
        with self._lock:
            self.held -= size


class Limits:
    """The service's bounds, built from `reports.limits`."""

    def __init__(self, config: ReportLimitsConfig) -> None:
        self.config = config
        self.admission = Admission(config.heavy_concurrent, config.heavy_queue, config.queue_seconds)
        self.spool = SpoolBudget(config.spool_mb * MIB)
        self.timeouts = 0  # requests answered 504 since start

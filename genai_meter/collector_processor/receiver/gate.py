"""Requests in flight across both receivers: a cap, and the drain on shutdown."""

from __future__ import annotations

import threading
import time


class Gate:
    """Requests in flight across both receivers, capped; closed (draining) on shutdown.

    `try_enter` never blocks: False means answer 503 / UNAVAILABLE now (overload or draining).
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._cond = threading.Condition()
        self._inflight = 0
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def inflight(self) -> int:
        return self._inflight

    def try_enter(self) -> bool:
        with self._cond:
            if self._closed or self._inflight >= self.limit:
                return False
            self._inflight += 1
            return True

    def leave(self) -> None:
        with self._cond:
            self._inflight -= 1
            if self._inflight <= 0:
                self._cond.notify_all()

    def close(self) -> None:
        """Refuse new requests from now on (requests in flight go on)."""
        with self._cond:
            self._closed = True

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until no request is in flight; False if `timeout_s` passed first."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._inflight > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

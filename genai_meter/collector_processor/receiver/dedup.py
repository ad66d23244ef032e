"""Counted once: a bounded, time-windowed set of (trace id, span id) keys.

OTLP has no idempotency: a client retries after a timeout even when the request was counted, and a
fan-out can deliver the same span twice (through HTTP and gRPC, or through two Collectors). The
receiver `claim`s a batch of candidate (GenAI) keys before metering them: a key seen within the
window, or claimed by a request still in flight, is a duplicate. Once its calls are counted (and
stored in the ledger) the request `settle`s its claims (seen from then on); a request that fails
`release`s them, so the client's retry counts. A span is marked seen only once it is counted.
Claims older than `claim_timeout_s` lapse (their owner died without a word).

Only candidate spans are remembered (the receiver's choice, docs/receiver.md): GenAI spans are a
small share of all spans, so the set stays small, and non-GenAI spans are never counted anyway.

Memory is bounded by generations: the window is split into `GENERATIONS` sets; a key lives in the
set of its arrival generation, and a whole set is dropped once it is older than the window (a key is
remembered for at least the window and at most one generation longer). Past `max_entries` the
oldest generation is dropped early, so a duplicate older than that is counted again; such early
evictions are counted in `evicted_early`. Thread-safe; one lock acquisition per batch.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

GENERATIONS = 8  # sets per window: membership costs this many lookups, expiry is this coarse

Key = bytes  # trace id (16 bytes) + span id (8 bytes)


def span_key(trace_id: bytes, span_id: bytes) -> Key:
    """The dedup key of one span."""
    return trace_id + span_id


class SeenSpans:
    """Remembers span keys for `window_s` seconds, at most about `max_entries` of them."""

    def __init__(self, window_s: float, max_entries: int, *,
                 clock: Callable[[], float] = time.monotonic, claim_timeout_s: float = 120.0) -> None:
        self.window_s = float(window_s)
        self.max_entries = int(max_entries)
        self.enabled = self.window_s > 0 and self.max_entries > 0
        self._clock = clock
        self._span = self.window_s / GENERATIONS if self.enabled else 0.0
        # newest generation first: (start time, keys)
        self._generations: deque[tuple[float, set[Key]]] = deque()
        self._size = 0
        self._lock = threading.Lock()
        self.evicted_early = 0  # keys dropped before their window ended, because of max_entries
        self.claim_timeout_s = claim_timeout_s
        self._claims: dict[Key, float] = {}  # key -> when it was claimed (in flight, not yet seen)

    def __len__(self) -> int:
        return self._size

    def filter_new(self, keys: Sequence[Key]) -> list[bool]:
        """`claim` and `settle` at once: True if not seen within the window (and remember it), False
        if a duplicate. A key repeated inside `keys` is new only the first time."""
        fresh = self.claim(keys)
        self.settle([key for key, new in zip(keys, fresh) if new])
        return fresh

    def claim(self, keys: Sequence[Key]) -> list[bool]:
        """For each key: True if neither seen within the window nor claimed by another request (it is
        now claimed by the caller), False if a duplicate. With dedup disabled every key is new."""
        if not self.enabled:
            return [True] * len(keys)
        now = self._clock()
        with self._lock:
            self._expire(now)
            sets = [g[1] for g in self._generations]
            claims = self._claims
            lapsed_before = now - self.claim_timeout_s
            out: list[bool] = []
            append = out.append
            for key in keys:
                for seen in sets:
                    if key in seen:
                        append(False)
                        break
                else:
                    claimed_at = claims.get(key)
                    if claimed_at is not None and claimed_at >= lapsed_before:
                        append(False)
                    else:
                        claims[key] = now
                        append(True)
            return out

    def settle(self, keys: Sequence[Key]) -> None:
        """The claimed `keys` were counted: remember them as seen for the window."""
        if not self.enabled or not keys:
            return
        now = self._clock()
        with self._lock:
            gens = self._generations
            if not gens or now - gens[0][0] >= self._span or len(gens[0][1]) >= self._generation_cap():
                gens.appendleft((now, set()))
            newest = gens[0][1]
            claims = self._claims
            for key in keys:
                claims.pop(key, None)
                if key not in newest:
                    newest.add(key)
                    self._size += 1
            self._enforce_cap()

    def release(self, keys: Sequence[Key]) -> None:
        """The claimed `keys` were not counted (the request failed): a retry may count them."""
        if not self.enabled or not keys:
            return
        with self._lock:
            claims = self._claims
            for key in keys:
                claims.pop(key, None)

    def _generation_cap(self) -> int:
        return max(1, self.max_entries // GENERATIONS)

    def _expire(self, now: float) -> None:
        # A generation's keys arrived before the start of the next-newer generation; it can go when
        # that start is older than the window.
        gens = self._generations
        while len(gens) >= 2 and now - gens[-2][0] > self.window_s:
            self._size -= len(gens.pop()[1])
        if len(gens) == 1 and now - gens[0][0] > self.window_s + self._span:
            self._size -= len(gens.pop()[1])

    def _enforce_cap(self) -> None:
        gens = self._generations
        while self._size > self.max_entries and len(gens) > 1:
            dropped = len(gens.pop()[1])
            self._size -= dropped
            self.evicted_early += dropped

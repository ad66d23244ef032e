"""The dedup set: a span id is counted once within the window, memory stays bounded."""

from __future__ import annotations

import threading

from genai_meter.collector_processor.receiver.dedup import GENERATIONS, SeenSpans, span_key


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def key(n: int) -> bytes:
    return span_key(n.to_bytes(16, "big"), (n + 1).to_bytes(8, "big"))


def test_duplicates_within_the_window_are_caught() -> None:
    clock = Clock()
    seen = SeenSpans(600, 1000, clock=clock)
    assert seen.filter_new([key(1), key(2)]) == [True, True]
    clock.now += 599
    assert seen.filter_new([key(2), key(3)]) == [False, True]
    assert len(seen) == 3


def test_a_key_repeated_in_one_batch_is_new_once() -> None:
    seen = SeenSpans(600, 1000)
    assert seen.filter_new([key(1), key(1), key(2), key(1)]) == [True, False, True, False]


def test_keys_expire_after_the_window() -> None:
    clock = Clock()
    seen = SeenSpans(600, 1000, clock=clock)
    seen.filter_new([key(1)])
    clock.now += 600 + 600 / GENERATIONS + 1  # at most one generation past the window
    seen.filter_new([key(99)])  # any call expires old generations
    assert seen.filter_new([key(1)]) == [True]


def test_remembered_at_least_the_window() -> None:
    clock = Clock()
    seen = SeenSpans(80, 10_000, clock=clock)
    for step in range(80):
        seen.filter_new([key(step)])
        clock.now += 1
    clock.now -= 1  # key(0) arrived exactly 79 s ago
    assert seen.filter_new([key(i) for i in range(80)]) == [False] * 80


def test_memory_is_bounded_by_max_entries() -> None:
    seen = SeenSpans(600, 1000)
    for batch in range(100):
        seen.filter_new([key(batch * 100 + i) for i in range(100)])
    assert len(seen) <= 1000 + 1000 // GENERATIONS
    assert seen.evicted_early > 0
    assert seen.filter_new([key(9999)]) == [False]  # the newest are still remembered


def test_disabled_dedup_counts_everything() -> None:
    for seen in (SeenSpans(0, 1000), SeenSpans(600, 0)):
        assert seen.filter_new([key(1), key(1)]) == [True, True]
        assert len(seen) == 0


def test_concurrent_batches_count_each_key_once() -> None:
    seen = SeenSpans(600, 1_000_000)
    results: list[list[bool]] = []
    keys = [key(i) for i in range(2000)]

    def work() -> None:
        results.append(seen.filter_new(keys))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sum(sum(r) for r in results) == 2000

"""Adding a group of calls to the usage series at once: the arithmetic of `CallCounter._count_group`
once the series indexes are known (`CallCounter._group_slots`).

`add_group_pure` is the reference; `_group_add` (C, optional) does the same additions, and `add_group`
below is it when built and not switched off (`GENAI_METER_ACCELERATOR=off`); both are tested alike
(tests/exporters/test_group_add.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

try:
    from genai_meter.exporters import _group_add
except ImportError:  # not built (no C compiler at install): the pure path only
    _group_add = None  # type: ignore[assignment]

ACCELERATOR_ENV = "GENAI_METER_ACCELERATOR"  # "off": the pure path only (read once, at import)
ACCELERATED: bool = _group_add is not None and os.environ.get(ACCELERATOR_ENV, "").strip().lower() != "off"


def add_group_pure(slots: Sequence[Any], calls: int, tokens: Sequence[int], costs: Sequence[int],
                   duration_counts: Sequence[int], durations: Sequence[float], ttft_counts: Sequence[int],
                   ttfts: Sequence[float], priced: bool, tables: Sequence[Any]) -> None:
    """Add one group to the series (under the store's lock). `slots`: (requests, duration, ttft,
    5 token indexes, 6 cost indexes, unpriced, errors, unmetered, ...) with every index the group
    needs present; `tables`: the value lists (requests, tokens, cost, unpriced, errors, unmetered),
    the duration histogram's (bucket count lists, sums), the ttft histogram's, and the calls-counted
    list and index (or None). Integers add exactly; a histogram's sum adds the values in order."""
    (requests, token_values, cost_values, unpriced, errors, unmetered, duration_counts_all, duration_sums,
     ttft_counts_all, ttft_sums, counted, counted_idx) = tables
    request_idx, duration_idx, ttft_idx, token_idx, cost_idx, unpriced_idx, error_idx, unmetered_idx = slots[:8]
    requests[request_idx] += calls
    for i, n in enumerate(tokens):
        if n > 0:
            token_values[token_idx[i]] += n
    if priced:
        for i, n in enumerate(costs):
            if n > 0:
                cost_values[cost_idx[i]] += n
    else:
        unpriced[unpriced_idx] += calls
    if error_idx is not None:
        errors[error_idx] += calls
    if unmetered_idx is not None:
        unmetered[unmetered_idx] += calls
    _observe_all(duration_counts_all[duration_idx], duration_sums, duration_idx, duration_counts, durations)
    if ttfts:
        _observe_all(ttft_counts_all[ttft_idx], ttft_sums, ttft_idx, ttft_counts, ttfts)
    if counted is not None:
        counted[counted_idx] += calls


def _observe_all(buckets: list[int], sums: list[float], idx: int, counts: Sequence[int],
                 values: Sequence[float]) -> None:
    for i, n in enumerate(counts):
        if n:
            buckets[i] += n
    total = sums[idx]
    for value in values:
        total += value
    sums[idx] = total


# the C `add_group` when built and not switched off (ACCELERATED, above), else the reference
add_group: Callable[[Sequence[Any], int, Sequence[int], Sequence[int], Sequence[int], Sequence[float], Sequence[int],
                     Sequence[float], bool, Sequence[Any]], None]
add_group = _group_add.add_group if ACCELERATED and _group_add is not None else add_group_pure

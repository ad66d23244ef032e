"""Counting a request's templated calls in bulk: per span only numbers, per group of calls the rest.

`Tally.run(spans, start)` goes through `spans` from `start` and *takes* each span whose outcome the
Meter already knows up to its numbers, stopping at the first span it cannot take (the caller assesses
that one through `Meter.assess`, which may teach the templates, and runs on from the next): so spans
are met in their order and `NestedCalls` sees what it would see span by span. A span is taken when:

- its shape's plan has template keys and its resource is the one the conventions and the Meter read
  last (their caches, by identity), with no conversation or user id on the resource or the span;
- its template key has a `TallyEntry` (learned by `Meter.assess` from a call it classified in full,
  `Meter.tally_entry`), its five counts are plain ints in 0..limits.max_tokens_per_call, it carries no
  sampling weight to apply, and no counted child LLM span makes it a nested call;
- each class, and the six classes' sum (the ledger's list_cost), costs less than 2^63 * 10^-12 USD
  through the entry's integer rates (more: `Meter.assess` flags the call, contract.INVALID_COST).

A taken span adds to its `Group` (template key and the token classes it used): calls, the five token
classes, the six cost classes in 10^-12 USD (rounded half-even per class, as `Plan.cost`), histogram
bucket counts and the observed values in order; and appends a `Taken` tuple for the ledger rows. Its
duration and time to first token are read as the classifier reads them: outside 0..MAX_CALL_NS
(conventions.times) each is unknown (0.0 / None).
`Meter.record_groups` counts groups into the metrics.

This module is the reference; `_tally` (C, optional, `ACCELERATED`) runs the same `run` and must
give identical groups and tuples (tests/metering/test_tally.py compares them).
"""

from __future__ import annotations

import os
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from genai_meter.conventions.attribution import CONVERSATION_KEYS, USER_KEYS
from genai_meter.conventions.keys import FIRST_TOKEN_EVENTS
from genai_meter.conventions.reading import split_counts
from genai_meter.conventions.templates import TOKEN_KEYS
from genai_meter.conventions.times import MAX_CALL_NS
from genai_meter.pricing.rates import Plan, pico_cost
from genai_meter.records import Cost, LLMCall, SpanRecord, TokenCounts

try:
    from genai_meter.collector_processor.metering._tally import run as _c_run
except ImportError:  # not built (no C compiler at install): the pure path only
    _c_run = None  # type: ignore[assignment]

ACCELERATOR_ENV = "GENAI_METER_ACCELERATOR"  # "off": the pure path only (read once, at import)
ACCELERATED: bool = _c_run is not None and os.environ.get(ACCELERATOR_ENV, "").strip().lower() != "off"
INT63 = 1 << 63
CONVERSATION_OR_USER_KEYS: frozenset[str] = frozenset(CONVERSATION_KEYS) | frozenset(USER_KEYS)


@dataclass(frozen=True, slots=True, eq=False)
class TallyEntry:
    """A template call and its price, for counting its key's calls without classifying them.
    Compared and hashed by identity (a group key)."""

    call: LLMCall  # the template (its label fields; numbers are each call's own)
    plan: Plan | None  # the model's price, fixed in time and untiered; None: the model has no price
    # (numerator, denominator, limit) x (input, cache_read, cache_write, cache_write_1h, output,
    # reasoning) then the request fee in 10^-12 USD: the plan's one bracket's `_p` and `_request`, flat
    pico_rates: tuple[int, ...]

    @classmethod
    def of(cls, call: LLMCall, plan: Plan | None) -> TallyEntry:
        """The entry of template `call` priced by `plan` (untiered) or unpriced (None)."""
        if plan is None:
            return cls(call, None, ())
        rates = plan.brackets[0]
        return cls(call, plan, tuple(x for triple in rates._p for x in triple) + (rates._request[1],))


class Taken(NamedTuple):
    """One taken span: its group and numbers."""

    group: int  # index into `Tally.groups`
    tokens: tuple[int, int, int, int, int]  # input, cache_read, cache_write, output, reasoning
    costs: tuple[int, int, int, int, int, int]  # 10^-12 USD by records.COST_CLASSES; zeros when unpriced
    duration_s: float
    ttft_s: float | None
    end_ns: int
    trace_id: bytes
    span_id: bytes
    parent_span_id: bytes


# Group fields, a list for cheap updates: (entry, used, calls, 5 token sums, 6 cost sums,
# duration bucket counts, durations observed, ttft bucket counts, ttfts observed)
G_ENTRY, G_USED, G_CALLS, G_TOKENS, G_COSTS = 0, 1, 2, 3, 8
G_DUR_COUNTS, G_DURS, G_TTFT_COUNTS, G_TTFTS = 14, 15, 16, 17
UNPRICED = -1  # `used` of a group of unpriced calls


class Tally:
    """One request's taken calls. Not thread-safe (one request at a time, under the Ingestor's lock).

    `templates` maps template keys to `TallyEntry`s; `plans` is the conventions' shape-plan dict;
    `conventions_resource` and `meter_resource` return those two caches' current tuples (their
    first item is the resource mapping they were read from); `parents` / `max_parents` are the
    `NestedCalls` memory.
    """

    def __init__(self, *, templates: dict[Any, TallyEntry], plans: dict[Any, Any], conventions: Any, meter: Any,
                 parents: dict[bytes, None], max_parents: int, max_tokens: int, weight_sampled: bool,
                 duration_bounds: Sequence[float], ttft_bounds: Sequence[float]) -> None:
        self.templates = templates
        self.plans = plans
        self.conventions = conventions  # `_last_resource`: (resource, service, environment, dims, key)
        self.meter = meter  # `_resource_ids`: (resource, conversation id, user id)
        self.parents = parents
        self.max_parents = max_parents
        self.max_tokens = max_tokens
        self.weight_sampled = weight_sampled
        self.duration_bounds = tuple(duration_bounds)
        self.ttft_bounds = tuple(ttft_bounds)
        self.groups: list[list[Any]] = []
        self.group_index: dict[tuple[Any, int], int] = {}
        self.taken: list[Taken] = []

    def clear(self) -> None:
        """Forget the last request's groups and taken spans."""
        self.groups = []
        self.group_index = {}
        self.taken = []

    def run(self, spans: Sequence[SpanRecord], start: int) -> int:
        """Take spans from `start` on; returns the index of the first span not taken (len(spans): all).
        The C `_tally.run` when `ACCELERATED`, else `run_pure`: the same result and the same changes."""
        if ACCELERATED:
            return _c_run(self, spans, start)
        return self.run_pure(spans, start)

    def run_pure(self, spans: Sequence[SpanRecord], start: int) -> int:
        """`run` in Python: the reference."""
        for i in range(start, len(spans)):
            if not self._take(spans[i]):
                return i
        return len(spans)

    def _take(self, span: SpanRecord) -> bool:
        attributes = span.attributes
        if type(attributes) is not dict:
            return False
        plan = self.plans.get((span.scope_name, tuple(attributes)))
        if plan is None or plan.template is None:
            return False
        resource = span.resource
        last = self.conventions._last_resource
        ids = self.meter._resource_ids
        if last[0] is not resource or ids[0] is not resource or ids[1] or ids[2]:
            return False
        if not CONVERSATION_OR_USER_KEYS.isdisjoint(attributes):
            return False
        try:
            entry = self.templates.get(
                (plan, last[4], span.is_error, tuple(map(attributes.get, plan.template.value_keys))))
        except TypeError:  # an unhashable value
            return False
        if entry is None:
            return False
        get = attributes.get
        counts = [get(key) for key in TOKEN_KEYS]
        for n in counts:
            if n is not None and (type(n) is not int or not 0 <= n <= self.max_tokens):
                return False
        if self.weight_sampled and span.trace_state:
            return False
        inp, out, cache_read, cache_write, reasoning = counts
        if inp is None and out is None and cache_read is None and cache_write is None and reasoning is None:
            tokens = (0, 0, 0, 0, 0)
        else:
            t = split_counts(inp, out, cache_read, cache_write, reasoning, None, True, True)
            tokens = (t.input, t.cache_read, t.cache_write, t.output, t.reasoning)
        priced = self._price(entry, tokens)
        if priced is None:
            return False
        used, costs = priced
        trace_id, span_id, parent = span.trace_id, span.span_id, span.parent_span_id
        parents = self.parents
        if trace_id:  # = NestedCalls.check_and_note for a span that is not nested
            if trace_id + span_id in parents:
                return False  # nested: `Meter.assess` says so (and notes it)
            if parent:
                parents[trace_id + parent] = None
                if len(parents) > self.max_parents:
                    del parents[next(iter(parents))]
        elapsed = span.end_ns - span.start_ns
        duration = elapsed / 1e9 if 0 < elapsed <= MAX_CALL_NS else 0.0  # else unknown (conventions.times)
        ttft = None
        for name, time_ns in span.events:  # = values.event_ttft
            if name in FIRST_TOKEN_EVENTS:
                delta = time_ns - span.start_ns
                ttft = delta / 1e9 if 0 <= delta <= MAX_CALL_NS else None
                break
        index = self._add(entry, used, tokens, costs, duration, ttft)
        self.taken.append(Taken(index, tokens, costs, duration, ttft, span.end_ns, trace_id, span_id, parent))
        return True

    def _price(self, entry: TallyEntry, tokens: tuple[int, int, int, int, int]
               ) -> tuple[int, tuple[int, int, int, int, int, int]] | None:
        """(used classes bits as `Plan.cost`, the six costs), or None when the span is left to `Meter.assess`:
        a count at or above its rate's limit, a rate outside int64, a class or the total cost outside
        -2^63 < x < 2^63 (10^-12 USD; `Meter.assess` flags such a call INVALID_COST)."""
        if entry.plan is None:
            return UNPRICED, (0, 0, 0, 0, 0, 0)
        r = entry.pico_rates
        one_hour = entry.call.cache_write_1h
        used = 0
        costs = [0, 0, 0, 0, 0, r[18]]
        # (token class, its rate triple's offset in pico_rates, its `used` bits)
        for i, offset, bit in ((0, 0, 1), (1, 3, 2), (2, 9 if one_hour else 6, 36 if one_hour else 4),
                               (3, 12, 8), (4, 15, 16)):
            n = tokens[i]
            if n:
                used |= bit
                numerator, denominator, limit = r[offset], r[offset + 1], r[offset + 2]
                if not n < limit or not -INT63 < numerator < INT63 or not 0 < denominator < INT63:
                    return None
                q = pico_cost(n, numerator, denominator)
                if not -INT63 < q < INT63:
                    return None
                costs[i] = q
        if not -INT63 < costs[5] < INT63 or not -INT63 < sum(costs) < INT63:
            return None
        return used, (costs[0], costs[1], costs[2], costs[3], costs[4], costs[5])

    def _add(self, entry: TallyEntry, used: int, tokens: tuple[int, ...], costs: tuple[int, ...],
             duration: float, ttft: float | None) -> int:
        """Add one call to the group of (entry, used); returns the group's index."""
        key = (entry, used)
        index = self.group_index.get(key)
        if index is None:
            index = len(self.groups)
            self.group_index[key] = index
            self.groups.append([entry, used, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                [0] * (len(self.duration_bounds) + 1), [], [0] * (len(self.ttft_bounds) + 1), []])
        group = self.groups[index]
        group[G_CALLS] += 1
        for i in range(5):
            group[G_TOKENS + i] += tokens[i]
        for i in range(6):
            group[G_COSTS + i] += costs[i]
        group[G_DUR_COUNTS][bisect_left(self.duration_bounds, duration)] += 1
        group[G_DURS].append(duration)
        if ttft is not None:
            group[G_TTFT_COUNTS][bisect_left(self.ttft_bounds, ttft)] += 1
            group[G_TTFTS].append(ttft)
        return index

    def regroup(self, keep: Sequence[bool]) -> list[list[Any]]:
        """The groups of the taken calls whose `keep` flag (aligned with `taken`) is true."""
        other = Tally(templates={}, plans={}, conventions=None, meter=None, parents={}, max_parents=0,
                      max_tokens=0, weight_sampled=False, duration_bounds=self.duration_bounds,
                      ttft_bounds=self.ttft_bounds)
        for taken, kept in zip(self.taken, keep):
            if kept:
                group = self.groups[taken.group]
                other._add(group[G_ENTRY], group[G_USED], taken.tokens, taken.costs, taken.duration_s, taken.ttft_s)
        return other.groups

    def members(self, keep: Sequence[bool] | None = None) -> dict[tuple[Any, int], list[Taken]]:
        """The taken calls (those `keep` flags) by group key (entry, used), in their order."""
        out: dict[tuple[Any, int], list[Taken]] = {}
        groups = self.groups
        for i, taken in enumerate(self.taken):
            if keep is None or keep[i]:
                group = groups[taken.group]
                out.setdefault((group[G_ENTRY], group[G_USED]), []).append(taken)
        return out

    def call_of(self, taken: Taken) -> tuple[LLMCall, Cost | None]:
        """The call and cost `Meter.assess` gives for a taken span."""
        group = self.groups[taken.group]
        entry: TallyEntry = group[G_ENTRY]
        t = entry.call
        tokens = TokenCounts(*taken.tokens)
        call = LLMCall(t.service, t.environment, t.provider, t.model, t.operation, t.status, t.error_type,
                       taken.duration_s, taken.ttft_s, tokens, taken.end_ns, t.dimensions, t.source, t.unmetered,
                       t.cache_write_1h, 1.0, "", t.request_model, taken.trace_id, taken.span_id,
                       taken.parent_span_id, service_tier=t.service_tier, batch=t.batch)
        return call, entry.plan.cost(tokens, t.cache_write_1h) if entry.plan is not None else None

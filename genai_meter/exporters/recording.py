"""The store's hot path: one LLM call counted into the usage families, per label set.

`CallCounter` holds the usage families (requests, tokens, cost, duration, ttft, unpriced, errors,
unmetered, price) and counts a call into them (`_count`, under the owner's lock). Speed comes from
work per label set instead of per call:

- the call's exported labels are resolved (cut, cap, hash, overflow) once per distinct combination of
  raw values (`_combos`), and each label set keeps the series index of every (family, class) it
  touched (`_slots`), so a repeated label set costs a few list operations per family;
- money is integer 10^-12 USD (`Cost.pico`, rounded where the call was priced): the cost family adds
  ints and converts to Decimal only when read (series.CounterTable `pico`); a sample weight makes the
  added amount a Decimal number of 10^-12 USD, still exact;
- the price gauge is set only when a call's rates differ from what the gauge shows already.

Exact: a resolution never changes (an admitted value stays admitted, caps never shrink); combinations
that overflowed a cap are resolved, and counted, on every call. Not thread-safe by itself: the owner
(`UsageMetrics`) calls `_count` under its lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from decimal import Decimal
from math import isfinite
from typing import Any

from genai_meter import contract
from genai_meter.config import Config
from genai_meter.contract import Contract
from genai_meter.exporters.budgets import Budget, BudgetTracker
from genai_meter.exporters.group_add import add_group
from genai_meter.exporters.labels import LabelResolver
from genai_meter.exporters.series import CounterTable, HistogramTable, SeriesTable
from genai_meter.exporters.unit_counts import UnitLabels, at_list_price, count_unit_costs, count_units, partial_reasons
from genai_meter.periods import NS
from genai_meter.records import Cost, LLMCall

TOKEN_TYPES = contract.TOKEN_TYPES
COST_TYPES = contract.COST_TYPES
# `_count` reads the classes from TokenCounts and Cost.pico by position, in these orders
assert TOKEN_TYPES == ("input", "cache_read", "cache_write", "output", "reasoning")
assert COST_TYPES == TOKEN_TYPES + ("request",)
_TOKEN_TYPE_SET = frozenset(TOKEN_TYPES)
# Per exported call-label tuple, the cached series index of each (family, class):
_SLOT_COST = len(TOKEN_TYPES)  # 0..4 tokens by TOKEN_TYPES, 5..10 cost by COST_TYPES
_COST_POS = {name: _SLOT_COST + i for i, name in enumerate(COST_TYPES)}
_STATUS_POS = {contract.STATUS_OK: 0, contract.STATUS_ERROR: 1}
_SLOT_REQ = _SLOT_COST + len(COST_TYPES)  # requests by status (ok, error)
_SLOT_DUR = _SLOT_REQ + 2  # duration by status (ok, error)
_SLOT_TTFT = _SLOT_DUR + 2
_SLOT_LABELS = _SLOT_TTFT + 1  # the entry's exported call-label tuple itself (last)
_SLOT_N = _SLOT_LABELS + 1
_ZERO = Decimal(0)


class CallCounter:
    """The usage families and the per-label-set hot path (the base of `UsageMetrics`)."""

    def __init__(self, config: Config, contract_: Contract, *, budget_grace_s: float) -> None:
        self.config = config
        self.contract = c = contract_
        self._lock = threading.Lock()
        self._resolver = LabelResolver(config)
        self._budgets = BudgetTracker(config.budgets, c.dimensions, grace_s=budget_grace_s)
        cap = config.limits.max_series_per_metric
        n = c.names
        dims = c.dimensions

        def counter(name: str, help_text: str, labels: tuple[str, ...], keep: tuple[str, ...] = (),
                    **kw: Any) -> CounterTable:
            return CounterTable(name, help_text, labels, max_series=cap, dimensions=dims, keep=keep, **kw)

        self.requests = counter(n.requests, "LLM inference calls, by status.", c.request_labels, ("status",))
        self.tokens = counter(n.tokens, "Tokens of LLM calls by token class (the five classes are disjoint).",
                              c.token_labels, ("token_type",))
        self.cost = counter(n.cost, "Cost of LLM calls in US dollars, by cost class.", c.cost_labels,
                            ("cost_type",), exact=True, pico=True, unit="usd")
        self.duration = HistogramTable(n.duration, "Duration of LLM calls in seconds.", c.duration_labels,
                                       max_series=cap, keep=("status",), buckets=contract.DURATION_BUCKETS,
                                       unit="seconds")
        self.ttft = HistogramTable(n.ttft, "Time to first token of streamed LLM calls in seconds.",
                                   c.ttft_labels, max_series=cap, buckets=contract.TTFT_BUCKETS, unit="seconds")
        self.unpriced = counter(n.unpriced, "LLM calls with no known price (their cost is not counted).",
                                c.unpriced_labels)
        self.request_errors = counter(n.request_errors, "Failed LLM calls by error type (no dimensions).",
                                      c.error_labels)
        self.unmetered = counter(n.unmetered, "LLM calls with missing or incomplete usage, by reason.",
                                 c.unmetered_labels, ("reason",))
        self.units = counter(n.units, "Billed quantities of LLM calls that are not tokens (searches, seconds, "
                             "images, custom units), by unit.", c.unit_labels, ("unit",))
        self.partially_priced = counter(n.partially_priced, "Priced LLM calls whose cost leaves out a unit without a "
                                        "price or stands in the standard price for a tier or batch price, by reason.",
                                        c.partially_priced_labels, ("reason",))
        self.estimated = counter(n.estimated, "LLM calls whose cost rests on an assumption, by reason.",
                                 c.estimated_labels, ("reason",))
        self._unit_labels = UnitLabels()
        self.price = counter(n.price, "Price in US dollars per million tokens, by token class, for models seen.",
                             c.price_labels, exact=True, kind="gauge")
        self.tools = counter(n.tool_calls, "Tool executions (no tokens, no cost), by tool name and status.",
                             c.tool_labels)
        self._tool_names: set[str] = set()  # admitted tool_name values (capped by limits.max_tool_names)
        self._usage_tables: tuple[SeriesTable, ...] = (
            self.requests, self.tokens, self.cost, self.duration, self.ttft, self.unpriced,
            self.request_errors, self.unmetered, self.price, self.tools, self.units, self.partially_priced,
            self.estimated)
        # exported call labels -> cached series indexes, and the labels (bounded like a family)
        self._slots: dict[tuple[str, ...], list[Any]] = {}
        self._slots_max = cap
        # raw (base values, dimension values) -> the same entries as _slots; see _call_slots
        self._combos: dict[tuple[Any, ...], list[Any]] = {}
        # id(template call) -> (that call, its `_group_slots`): the group path's series indexes
        self._slot_cache: dict[int, tuple[LLMCall, tuple[Any, ...]]] = {}
        self._dim_names = tuple(dim.name for dim in self._resolver.dimensions)
        self._has_budgets = bool(self._budgets)
        # (provider, model) -> the last unit-price dict seen, and the rates the price gauge shows
        self._last_prices: dict[tuple[str, str], dict[str, Decimal]] = {}
        self._shown: dict[tuple[str, str], dict[str, Decimal]] = {}
        # set by the owner once its self-metrics exist: label overflows, calls counted
        self._label_overflow: CounterTable | None = None
        self._counted: CounterTable | None = None
        self._counted_idx = 0
        self._clock_ns: Callable[[], int] = clock_ns(lambda: 0.0)  # the owner's clock (budget periods)

    def _count(self, call: LLMCall, cost: Cost | None, budgets: Sequence[Budget]
               ) -> tuple[tuple[str, ...] | None, tuple[str, ...] | None]:
        """Count a call (under the lock); returns the (folded) duration and ttft label tuples it landed in."""
        weight = call.sample_weight
        unweighted = weight == 1.0
        if not unweighted and not (weight > 0 and isfinite(weight)):  # a broken weight must not poison counters
            weight, unweighted = 1.0, True
        dweight = None if unweighted else Decimal(repr(weight))
        entry, overflowed = self._call_slots(call)
        labels: tuple[str, ...] = entry[_SLOT_LABELS]
        if overflowed and self._label_overflow is not None:
            for dim in overflowed:
                self._label_overflow.add((dim,), 1)
        slot = self._slot
        status = call.status
        req_pos = _STATUS_POS.get(status)
        if req_pos is None:
            status = self._resolver.base(status)
            idx = slot(entry, None, self.requests, labels + (status,))
        else:
            idx = entry[_SLOT_REQ + req_pos]
            if idx is None:
                idx = slot(entry, _SLOT_REQ + req_pos, self.requests, labels + (status,))
        if idx is not None:
            self.requests.values[idx] += 1 if unweighted else weight

        t = call.tokens
        tokens = self.tokens
        values = tokens.values
        # The five classes unrolled (half the cost of a loop over them). A class counts only when
        # positive: counters never go down, and a class never used makes no series.
        count = t.input
        if count > 0:
            idx = entry[0]
            if idx is None:
                idx = slot(entry, 0, tokens, labels + (TOKEN_TYPES[0],))
            if idx is not None:
                values[idx] += count if unweighted else count * weight
        count = t.cache_read
        if count > 0:
            idx = entry[1]
            if idx is None:
                idx = slot(entry, 1, tokens, labels + (TOKEN_TYPES[1],))
            if idx is not None:
                values[idx] += count if unweighted else count * weight
        count = t.cache_write
        if count > 0:
            idx = entry[2]
            if idx is None:
                idx = slot(entry, 2, tokens, labels + (TOKEN_TYPES[2],))
            if idx is not None:
                values[idx] += count if unweighted else count * weight
        count = t.output
        if count > 0:
            idx = entry[3]
            if idx is None:
                idx = slot(entry, 3, tokens, labels + (TOKEN_TYPES[3],))
            if idx is not None:
                values[idx] += count if unweighted else count * weight
        count = t.reasoning
        if count > 0:
            idx = entry[4]
            if idx is None:
                idx = slot(entry, 4, tokens, labels + (TOKEN_TYPES[4],))
            if idx is not None:
                values[idx] += count if unweighted else count * weight

        unit_tokens = count_units(labels, call.units, self._unit_labels, tokens, self.units,
                                  None if unweighted else weight) if call.units else 0
        service, provider, model = labels[0], labels[2], labels[3]
        if cost is None:
            self.unpriced.add((service, provider, model), 1 if unweighted else weight)
        else:
            self._count_cost(entry, labels, cost, dweight)
            if cost.unit_pico:
                count_unit_costs(labels, cost.unit_pico, self._unit_labels, self.cost, dweight)
            for reason in partial_reasons(cost.unpriced_units) if cost.unpriced_units else ():
                self.partially_priced.add((service, provider, model, reason), 1 if unweighted else weight)
            prices = cost.unit_prices
            if prices and self._last_prices.get((provider, model)) is not prices and at_list_price(call):
                self._set_prices(provider, model, prices)
        if call.estimate:
            self.estimated.add((service, provider, model, contract.ESTIMATE_MODALITY), 1 if unweighted else weight)
        if call.status == contract.STATUS_ERROR:
            error_type = self._resolver.base(call.error_type or contract.UNKNOWN)
            self.request_errors.add(labels[:5] + (error_type,), 1 if unweighted else weight)
        if call.unmetered:
            self.unmetered.add((service, provider, model, self._resolver.base(call.unmetered)),
                               1 if unweighted else weight)

        dur_key = ttft_key = None
        duration = call.duration_s
        if duration is not None and isfinite(duration):  # NaN/inf: not observed
            if req_pos is None:
                idx = slot(entry, None, self.duration, labels[:5] + (status,))
            else:
                idx = entry[_SLOT_DUR + req_pos]
                if idx is None:
                    idx = slot(entry, _SLOT_DUR + req_pos, self.duration, labels[:5] + (status,))
            if idx is not None:
                self.duration.observe_at(idx, duration if duration > 0 else 0.0)
                dur_key = self.duration.labelsets[idx]
        ttft = call.ttft_s
        if ttft is not None and isfinite(ttft):
            idx = entry[_SLOT_TTFT]
            if idx is None:
                idx = slot(entry, _SLOT_TTFT, self.ttft, labels[:5])
            if idx is not None:
                self.ttft.observe_at(idx, ttft if ttft > 0 else 0.0)
                ttft_key = self.ttft.labelsets[idx]
        if budgets:
            spend = max(cost.total, _ZERO) if cost is not None else _ZERO
            if dweight is not None:
                spend *= dweight
            used = max(t.total + unit_tokens, 0)
            self._budgets.add(budgets, call.end_ns, self._clock_ns(), spend, used if unweighted else used * weight)
        if self._counted is not None:
            self._counted.values[self._counted_idx] += 1
        return dur_key, ttft_key

    def _count_group(self, call: LLMCall, prices: dict[str, Decimal] | None, calls: int, tokens: Sequence[int],
                     costs: Sequence[int], duration_counts: Sequence[int], durations: Sequence[float],
                     ttft_counts: Sequence[int], ttfts: Sequence[float]) -> bool:
        """`_count` of `calls` unweighted calls with `call`'s labels at once (under the lock), when every
        series they touch exists and nothing else must happen per call; else False, nothing counted."""
        slots = self._group_slots(call, prices is not None, False)
        if slots is None or not self._has_series(slots, tokens, costs, ttfts):
            slots = self._group_slots(call, prices is not None, True)  # series made since
            if slots is None or not self._has_series(slots, tokens, costs, ttfts):
                return False
        priced = prices is not None
        if priced and prices and self._last_prices.get(slots[8]) is not prices and at_list_price(call):
            self._set_prices(slots[8][0], slots[8][1], prices)  # as the group's first call would
        add_group(slots, calls, tokens, costs, duration_counts, durations, ttft_counts, ttfts, priced,
                  self._group_tables)
        return True

    @property
    def _group_tables(self) -> tuple[Any, ...]:
        """The value lists `add_group` adds to."""
        counted = self._counted
        return (self.requests.values, self.tokens.values, self.cost.values, self.unpriced.values,
                self.request_errors.values, self.unmetered.values, self.duration.counts, self.duration.sums,
                self.ttft.counts, self.ttft.sums, counted.values if counted is not None else None,
                self._counted_idx)

    @staticmethod
    def _has_series(slots: tuple[Any, ...], tokens: Sequence[int], costs: Sequence[int], ttfts: Sequence[float]
                    ) -> bool:
        """Whether every series the group adds to exists (slots[9]: every class and the ttft series do)."""
        if slots[9]:
            return True
        if ttfts and slots[2] is None:
            return False
        token_idx, cost_idx = slots[3], slots[4]
        for i, n in enumerate(tokens):
            if n > 0 and token_idx[i] is None:
                return False
        return all(not (n > 0 and cost_idx[i] is None) for i, n in enumerate(costs))

    def _group_slots(self, call: LLMCall, priced: bool, refresh: bool) -> tuple[Any, ...] | None:
        """The series indexes a group of calls like `call` adds to (None where a series does not exist
        yet), cached per call object: (requests, duration, ttft, 5 token classes, 6 cost classes,
        unpriced, errors, unmetered, (provider, model) labels, whether the ttft and every class series
        exist); None when the label set overflowed or was never counted."""
        cached = self._slot_cache.get(id(call))
        if cached is not None and cached[0] is call and not refresh:
            return cached[1]
        entry = self._combos.get((call.service, call.environment, call.provider, call.model, call.operation,
                                  call.service_tier, call.batch, *map(call.dimensions.get, self._dim_names)))
        pos = _STATUS_POS.get(call.status)
        if entry is None or pos is None:
            return None  # a label overflowed (counted per call), or not counted yet
        labels: tuple[str, ...] = entry[_SLOT_LABELS]
        service, provider, model = labels[0], labels[2], labels[3]
        request_idx, duration_idx = entry[_SLOT_REQ + pos], entry[_SLOT_DUR + pos]
        if request_idx is None or duration_idx is None:
            return None
        error_idx = unmetered_idx = unpriced_idx = None
        if call.status == contract.STATUS_ERROR:
            error_idx = self.request_errors.index.get(
                labels[:5] + (self._resolver.base(call.error_type or contract.UNKNOWN),))
            if error_idx is None:
                return None
        if call.unmetered:
            unmetered_idx = self.unmetered.index.get((service, provider, model, self._resolver.base(call.unmetered)))
            if unmetered_idx is None:
                return None
        if not priced:
            unpriced_idx = self.unpriced.index.get((service, provider, model))
            if unpriced_idx is None:
                return None
        token_idx, cost_idx = tuple(entry[0:5]), tuple(entry[_SLOT_COST:_SLOT_COST + 6])
        every_series = entry[_SLOT_TTFT] is not None and None not in token_idx and None not in cost_idx
        slots = (request_idx, duration_idx, entry[_SLOT_TTFT], token_idx, cost_idx, unpriced_idx, error_idx,
                 unmetered_idx, (provider, model), every_series)
        if len(self._slot_cache) >= self._slots_max:
            self._slot_cache.clear()
        self._slot_cache[id(call)] = (call, slots)
        return slots

    def _count_cost(self, entry: list[Any], labels: tuple[str, ...], cost: Cost, dweight: Decimal | None) -> None:
        """Add the call's cost classes to the cost family, in 10^-12 USD."""
        values = self.cost.values
        slot = self._slot
        if cost.pico:  # priced here: six ints, COST_TYPES order
            for pos, pico in enumerate(cost.pico, _SLOT_COST):
                if pico > 0:  # (zero classes, most of them, stop at the cheap test)
                    idx = entry[pos]
                    if idx is None:
                        idx = slot(entry, pos, self.cost, labels + (COST_TYPES[pos - _SLOT_COST],))
                    if idx is not None:
                        values[idx] += pico if dweight is None else pico * dweight
            return
        for cost_type, usd in cost.by_type.items():  # a Cost built elsewhere: its Decimals, unrounded
            if usd and usd > 0:
                known = _COST_POS.get(cost_type)
                found = entry[known] if known is not None else None
                if found is None:
                    found = slot(entry, known, self.cost, labels + (self._resolver.base(cost_type),))
                if found is not None:
                    scaled = usd.scaleb(12)  # exact: a power-of-ten shift into 10^-12 USD
                    values[found] += scaled if dweight is None else scaled * dweight

    def _call_slots(self, call: LLMCall) -> tuple[list[Any], Sequence[str]]:
        """(the cached series indexes of the call's exported label set, with the labels at
        _SLOT_LABELS; the dimensions whose value overflowed).

        Only short string values are cached, and only combinations that did not overflow (an
        overflow must be counted on every call, and a flood of new values must not grow it).
        """
        raw: tuple[str | bool | None, ...] = (call.service, call.environment, call.provider, call.model,
                                              call.operation, call.service_tier, call.batch,
                                              *map(call.dimensions.get, self._dim_names))
        key: tuple[str | bool | None, ...] | None = raw
        try:
            entry = self._combos.get(raw)
        except TypeError:  # an unhashable raw value (not from Conventions): resolve every time
            entry, key = None, None
        if entry is not None:
            return entry, ()
        labels, overflowed = self._resolver.call_labels(call)
        entry = self._slots.get(labels)
        if entry is None:
            entry = [None] * _SLOT_N
            entry[_SLOT_LABELS] = labels
            if len(self._slots) < self._slots_max:
                self._slots[labels] = entry
        max_len = self._resolver.max_len
        if (key is not None and not overflowed and len(self._combos) < self._slots_max
                and all(v is None or (type(v) is str and len(v) <= max_len) for i, v in enumerate(key) if i != 6)):
            self._combos[key] = entry
        return entry, overflowed

    @staticmethod
    def _slot(entry: list[Any], pos: int | None, table: SeriesTable,
              key: tuple[str, ...]) -> int | None:
        """Slow path: find or create the series; cache its index unless it was folded."""
        idx = table.slot(key)
        if idx is not None and pos is not None and table.labelsets[idx] == key:
            entry[pos] = idx  # folded updates keep taking the slow path, so each is counted
        return idx

    def _set_prices(self, provider: str, model: str, prices: dict[str, Decimal]) -> None:
        """Set the price gauge to `prices` unless it shows them already (the last call's rates win).

        `_last_prices` holds the last `Cost.unit_prices` object seen per model (the hot path's
        identity test: the pricer shares these dicts), `_shown` what the gauge shows."""
        key = (provider, model)
        shown = self._shown.get(key)
        remember = len(self._last_prices) < self._slots_max  # past it: set every time (bounded memory)
        if remember:
            self._last_prices[key] = prices
        if shown is not None and prices.items() <= shown.items():
            return  # e.g. calls alternating between token-class sets of the same rates
        if shown is None:
            shown = {}
            if remember:
                self._shown[key] = shown
        for token_type, price in prices.items():
            if token_type in _TOKEN_TYPE_SET:
                self.price.set((provider, model, token_type), price)
                shown[token_type] = price

    def _record(self, call: LLMCall, cost: Cost | None
                ) -> tuple[tuple[str, ...] | None, tuple[str, ...] | None]:
        """Count a call; returns the (folded) duration and ttft label tuples it landed in."""
        budgets = self._budgets.matching(call) if self._has_budgets else ()  # pure: outside the lock
        with self._lock:
            return self._count(call, cost, budgets)


def clock_ns(clock: Callable[[], float]) -> Callable[[], int]:
    """A nanosecond reader of a seconds `clock` (budgets decide the current period by it)."""
    return lambda: int(clock() * NS)

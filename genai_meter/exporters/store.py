"""UsageMetrics: the metric store of genai-meter (a `Recorder`), rendered for Prometheus.

Counts every LLM call into the contract's metrics (genai_meter.contract; docs/metrics.md), with
bounded labels (exporters.labels, exporters.series), exact money (Decimal until rendering), and
budget counters per calendar period (exporters.budgets).

Thread-safe: one lock guards all state; `record_*` hold it for a few dict updates and never do
I/O, so they are safe on a span-ending thread. `render` copies the values under the lock and
formats outside it. Never raises on span content; `record_self` raises ValueError on a name or
label set that is not in the contract (a programming error).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from math import isfinite
from typing import Any

from genai_meter import __version__, contract
from genai_meter.config import Config
from genai_meter.contract import Contract
from genai_meter.exporters.bridge import StoreCollector
from genai_meter.exporters.budgets import Budget, BudgetTracker
from genai_meter.exporters.exposition import FamilyText, render
from genai_meter.exporters.families import FamilyData
from genai_meter.exporters.labels import LabelResolver
from genai_meter.exporters.series import CounterTable, HistogramTable, SeriesTable, label_pairs
from genai_meter.periods import NS
from genai_meter.records import Cost, LLMCall

SampleKey = tuple[str, frozenset[tuple[str, str]]]

# Self-metrics: name -> (label names, help). All counters except the two info gauges.
SELF_COUNTERS: dict[str, tuple[tuple[str, ...], str]] = {
    contract.SELF_SPANS_RECEIVED: ((), "Spans received."),
    contract.SELF_SPANS_COUNTED: ((), "Spans counted as LLM inference calls."),
    contract.SELF_SPANS_SKIPPED: (("reason",), "Spans not counted, by reason."),
    contract.SELF_SPANS_DUPLICATE: ((), "Spans dropped as duplicates (same trace and span id)."),
    contract.SELF_SPANS_REJECTED: (("reason",), "Spans rejected, by reason."),
    contract.SELF_SPANS_SAMPLED: ((), "Spans carrying a probability-sampling threshold (figures undercount)."),
    contract.SELF_LABEL_OVERFLOW: (("dimension",), "Calls whose dimension value was folded into __overflow__."),
    contract.SELF_SERIES_OVERFLOW: (("metric",), "Updates folded into an overflow series by the per-metric cap."),
    contract.SELF_SPANS_FORWARDED: ((), "Spans forwarded."),
    contract.SELF_SPANS_FORWARD_DROPPED: (("reason",), "Spans that could not be forwarded, by reason."),
    contract.SELF_PROCESSING_ERRORS: ((), "Spans whose metering failed."),
}
# Only `genai-meter serve` has a ledger and workers: these exist in its stores alone (`serve=True`).
SERVE_COUNTERS: dict[str, tuple[tuple[str, ...], str]] = {
    contract.SELF_LEDGER_FAILURES: ((), "OTLP requests refused (503) because the ledger could not store their calls."),
}
SELF_GAUGES: dict[str, tuple[tuple[str, ...], str]] = {
    contract.SELF_LEDGER_DIFFERENCE: ((), "Ledger minus metrics cost since start, USD (must stay 0)."),
    contract.SELF_LEDGER_WAL_BYTES: ((), "Size of the SQLite ledger's write-ahead log, bytes."),
    contract.SELF_WORKERS_UNRESPONSIVE: ((), "Workers that missed the last scrape; their last figures are shown."),
}
SELF_INFO: dict[str, tuple[tuple[str, ...], str]] = {
    contract.SELF_BUILD_INFO: (("version",), "genai-meter build version (value 1)."),
    contract.SELF_PRICING_INFO: (("catalog_version", "overrides_version"),
                                 "Price catalog and override versions in use (value 1)."),
}
TOKEN_TYPES = contract.TOKEN_TYPES
# `_count` reads the classes from TokenCounts by name, in this order (slots 0..4)
assert TOKEN_TYPES == ("input", "cache_read", "cache_write", "output", "reasoning")
_TOKEN_TYPE_SET = frozenset(TOKEN_TYPES)
# Per exported call-label tuple, the hot path caches the series index of each (family, class):
_SLOT_COST = len(TOKEN_TYPES)  # 0..4 tokens by TOKEN_TYPES, 5..10 cost by COST_TYPES
_COST_POS = {name: _SLOT_COST + i for i, name in enumerate(contract.COST_TYPES)}
_STATUS_POS = {contract.STATUS_OK: 0, contract.STATUS_ERROR: 1}
_SLOT_REQ = _SLOT_COST + len(contract.COST_TYPES)  # requests by status (ok, error)
_SLOT_DUR = _SLOT_REQ + 2  # duration by status (ok, error)
_SLOT_TTFT = _SLOT_DUR + 2
_SLOT_LABELS = _SLOT_TTFT + 1  # the entry's exported call-label tuple itself
_SLOT_N = _SLOT_LABELS + 1
_SELF_MAX_SERIES = 1000
_ZERO = Decimal(0)  # self-metric label values come from code, but stay bounded anyway


class UsageMetrics:
    """The usage-metric store: a `Recorder` that renders Prometheus text and OpenMetrics.

    `clock` (seconds since the epoch) decides which budget periods are current; `budget_grace_s`
    is how long the previous period stays exported after a rollover (exporters.budgets).
    """

    def __init__(self, config: Config, *, clock: Callable[[], float] = time.time,
                 catalog_version: str = "", overrides_version: str = "",
                 budget_grace_s: float = 300.0, serve: bool = False) -> None:
        self.config = config
        self.contract = c = Contract.from_config(config)
        self._clock = clock
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
                            ("cost_type",), exact=True, unit="usd")
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
        self.price = counter(n.price, "Price in US dollars per million tokens, by token class, for models seen.",
                             c.price_labels, exact=True, kind="gauge")
        self._usage_tables: tuple[SeriesTable, ...] = (
            self.requests, self.tokens, self.cost, self.duration, self.ttft, self.unpriced,
            self.request_errors, self.unmetered, self.price)

        self._self: dict[str, CounterTable] = {
            name: CounterTable(name, help_text, labels, max_series=_SELF_MAX_SERIES)
            for name, (labels, help_text) in {**SELF_COUNTERS, **(SERVE_COUNTERS if serve else {})}.items()
        }
        self._gauges = SELF_GAUGES if serve else {}
        for name, (labels, help_text) in {**SELF_INFO, **self._gauges}.items():
            self._self[name] = CounterTable(name, help_text, labels, max_series=_SELF_MAX_SERIES, kind="gauge")
        self._counted = self._self[contract.SELF_SPANS_COUNTED]
        self._skipped = self._self[contract.SELF_SPANS_SKIPPED]
        self._label_overflow = self._self[contract.SELF_LABEL_OVERFLOW]
        series_overflow = self._self[contract.SELF_SERIES_OVERFLOW]
        for name, (labels, _) in {**SELF_COUNTERS, **(SERVE_COUNTERS if serve else {}), **self._gauges}.items():
            if not labels:
                self._self[name].touch(())
        for dim in dims:
            self._label_overflow.touch((dim,))
        for table in self._usage_tables:
            key = (table.name,)
            series_overflow.touch(key)
            table.on_fold = lambda key=key: series_overflow.add(key, 1)
        self._self[contract.SELF_BUILD_INFO].set((__version__,), 1)
        self._by_name: dict[str, SeriesTable] = {t.name: t for t in self._tables()}
        counted_idx = self._counted.slot(())
        assert counted_idx is not None  # the first series of a fresh table always fits
        self._counted_idx: int = counted_idx
        # exported call labels -> cached series indexes, and the labels (bounded like a family)
        self._slots: dict[tuple[str, ...], list[Any]] = {}
        self._slots_max = cap
        # raw (base values, dimension values) -> the same entries as _slots; see _call_slots
        self._combos: dict[tuple[Any, ...], list[Any]] = {}
        self._dim_names = tuple(dim.name for dim in self._resolver.dimensions)
        self._has_budgets = bool(self._budgets)
        self._last_prices: dict[tuple[str, str], dict[str, Decimal]] = {}  # skips unchanged price sets
        self._pricing_key: tuple[str, str] | None = None
        self.set_pricing_info(catalog_version, overrides_version)

    # -- Recorder ---------------------------------------------------------------------------

    def record_call(self, call: LLMCall, cost: Cost | None) -> None:
        """Count one inference call; `cost` None means unpriced (counted, but no cost)."""
        budgets = self._budgets.matching(call) if self._has_budgets else ()  # pure: outside the lock
        with self._lock:
            self._count(call, cost, budgets)

    def record_skip(self, reason: str) -> None:
        """Count one span that was not an inference call."""
        key = (self._resolver.base(reason),)
        with self._lock:
            self._skipped.add(key, 1)

    def record_self(self, name: str, amount: float = 1, **labels: str) -> None:
        """Add `amount` to the self-metric `name` (a genai_meter.contract SELF_* counter)."""
        table = self._self.get(name)
        if table is None or name in SELF_INFO or name in self._gauges:
            raise ValueError(f"{name!r} is not a genai-meter self-metric counter")
        if set(labels) != set(table.labelnames):
            raise ValueError(f"{name} takes labels {table.labelnames}, got {tuple(sorted(labels))}")
        key = tuple(self._resolver.base(str(labels[n])) for n in table.labelnames)
        with self._lock:
            table.add(key, amount)

    def set_self_gauge(self, name: str, value: float) -> None:
        """Set the unlabelled self-metric gauge `name` (a genai_meter.contract SELF_* gauge)."""
        if name not in self._gauges:
            raise ValueError(f"{name!r} is not a genai-meter self-metric gauge")
        with self._lock:
            self._self[name].set((), value)

    # -- info -------------------------------------------------------------------------------

    def set_pricing_info(self, catalog_version: str, overrides_version: str) -> None:
        """Set genai_meter_pricing_info{catalog_version, overrides_version} (the old pair goes to 0)."""
        key = (catalog_version or contract.UNKNOWN, overrides_version or "none")
        table = self._self[contract.SELF_PRICING_INFO]
        with self._lock:
            if self._pricing_key is not None and self._pricing_key != key:
                table.set(self._pricing_key, 0)
            table.set(key, 1)
            self._pricing_key = key

    # -- the hot path -----------------------------------------------------------------------

    def _record(self, call: LLMCall, cost: Cost | None
                ) -> tuple[tuple[str, ...] | None, tuple[str, ...] | None]:
        """Count a call; returns the (folded) duration and ttft label tuples it landed in."""
        budgets = self._budgets.matching(call) if self._has_budgets else ()  # pure: outside the lock
        with self._lock:
            return self._count(call, cost, budgets)

    def _count(self, call: LLMCall, cost: Cost | None, budgets: Sequence[Budget]
               ) -> tuple[tuple[str, ...] | None, tuple[str, ...] | None]:
        """`_record` under the lock. Series indexes come from the call's cached slot entry, so a
        repeated label set costs a few list operations per family (see `_call_slots`)."""
        weight = call.sample_weight
        unweighted = weight == 1.0
        if not unweighted and not (weight > 0 and isfinite(weight)):  # a broken weight must not poison counters
            weight, unweighted = 1.0, True
        dweight = None if unweighted else Decimal(repr(weight))
        entry, overflowed = self._call_slots(call)
        labels: tuple[str, ...] = entry[_SLOT_LABELS]
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

        service, provider, model = labels[0], labels[2], labels[3]
        if cost is None:
            self.unpriced.add((service, provider, model), 1 if unweighted else weight)
        else:
            values = self.cost.values
            for cost_type, amount in cost.by_type.items():
                if amount and amount > 0:  # (zero classes, most of them, stop at the cheap test)
                    pos = _COST_POS.get(cost_type)
                    idx = entry[pos] if pos is not None else None
                    if idx is None:
                        idx = slot(entry, pos, self.cost, labels + (self._resolver.base(cost_type),))
                    if idx is not None:
                        values[idx] += amount if dweight is None else amount * dweight
            prices = cost.unit_prices
            if prices and self._last_prices.get((provider, model)) is not prices:
                self._set_prices(provider, model, cost)
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
            used = max(t.total, 0)
            self._budgets.add(budgets, call.end_ns, int(self._clock() * NS), spend,
                              used if unweighted else used * weight)
        self._counted.values[self._counted_idx] += 1
        return dur_key, ttft_key

    def _call_slots(self, call: LLMCall) -> tuple[list[Any], Sequence[str]]:
        """(the cached series indexes of the call's exported label set, with the labels at
        _SLOT_LABELS; the dimensions whose value overflowed).

        Speed: resolving labels (cut, cap, hash per dimension) runs once per distinct combination
        of raw values; later calls with the same raw values take the entry from `_combos`. A
        resolution is final (an admitted value stays admitted, caps never shrink), so the cache is
        exact. Only short string values are cached, and only combinations that did not overflow
        (an overflow must be counted on every call, and a flood of new values must not grow it).
        """
        raw: tuple[str | None, ...] = (call.service, call.environment, call.provider, call.model, call.operation,
                                       *map(call.dimensions.get, self._dim_names))
        key: tuple[str | None, ...] | None = raw
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
                and all(v is None or (type(v) is str and len(v) <= max_len) for v in key)):
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

    def _set_prices(self, provider: str, model: str, cost: Cost) -> None:
        prices = cost.unit_prices
        last = self._last_prices.get((provider, model))
        if last is prices or last == prices:
            if last is not None:
                self._last_prices[(provider, model)] = prices  # the next call's check is `is`
            return
        if len(self._last_prices) < self._slots_max:
            self._last_prices[(provider, model)] = prices
        for token_type, price in prices.items():
            if token_type in _TOKEN_TYPE_SET:
                self.price.set((provider, model, token_type), price)

    # -- reading ----------------------------------------------------------------------------

    def _budget_data(self) -> list[FamilyData]:
        """Budget families (call under the lock)."""
        n = self.contract.names
        spend = FamilyData("counter", n.budget_spend, "Spend in US dollars counted against each budget, "
                           "by calendar period (only current periods are exported).",
                           "usd", self.contract.budget_labels, [], [], exact=True)
        tokens = FamilyData("counter", n.budget_tokens, "Tokens counted against each budget, by calendar "
                            "period (only current periods are exported).", "", self.contract.budget_labels, [], [])
        limit = FamilyData("gauge", n.budget_limit, "Limit of each budget in its unit (usd or tokens).", "",
                           ("budget", "unit"), [], [], exact=True)
        for budget, period, spent, used in self._budgets.visible(int(self._clock() * NS)):
            spend.keys.append((budget.name, period))
            spend.values.append(spent)
            tokens.keys.append((budget.name, period))
            tokens.values.append(used)
        for budget in self._budgets.budgets:
            limit.keys.append((budget.name, budget.unit))
            limit.values.append(budget.limit)
        return [spend, tokens, limit]

    def _tables(self) -> list[SeriesTable]:
        return [*self._usage_tables, *self._self.values()]

    @staticmethod
    def _table_data(table: SeriesTable) -> FamilyData:
        """Snapshot one table (call under the lock)."""
        if isinstance(table, HistogramTable):
            _, counts, sums = table.snapshot()
            return FamilyData("histogram", table.name, table.help, table.unit, table.labelnames,
                              table.keys(), list(zip(counts, sums)), bounds=table.bounds)
        assert isinstance(table, CounterTable)
        _, values = table.snapshot()
        return FamilyData(table.kind, table.name, table.help, table.unit, table.labelnames,
                          table.keys(), values, exact=table.exact)

    def families(self) -> list[FamilyData]:
        """A consistent snapshot of every family, with label tuples (bridge, OTel, tests)."""
        with self._lock:
            out = [self._table_data(table) for table in self._tables()]
            budget_data = self._budget_data()
        n_usage = len(self._usage_tables)
        return out[:n_usage] + budget_data + out[n_usage:]

    def family(self, name: str) -> FamilyData:
        """The snapshot of one family by its (sample) name; KeyError if unknown."""
        with self._lock:
            table = self._by_name.get(name)
            if table is not None:
                return self._table_data(table)
            for data in self._budget_data():
                if data.name == name:
                    return data
        raise KeyError(name)

    def family_names(self) -> list[tuple[str, str]]:
        """(name, kind) of every family, in exposition order."""
        return [(d.name, d.kind) for d in self.families()]

    def snapshot(self) -> list[FamilyText]:
        """What `render` formats: values copied under the lock, cached label text."""
        out: list[FamilyText] = []
        with self._lock:
            for table in self._tables():
                if isinstance(table, HistogramTable):
                    heads, counts, sums = table.snapshot()
                    out.append(FamilyText("histogram", table.name, table.help, table.unit, heads,
                                          list(zip(counts, sums)), les=table.les))
                else:
                    assert isinstance(table, CounterTable)
                    heads, values = table.snapshot()
                    out.append(FamilyText(table.kind, table.name, table.help, table.unit, heads, values,
                                          exact=table.exact))
            budget_data = self._budget_data()
        budget_text = [
            FamilyText(d.kind, d.name, d.help, d.unit,
                       [f"{d.name}{{{label_pairs(d.labelnames, key)}}} " for key in d.keys], d.values,
                       exact=d.exact)
            for d in budget_data
        ]
        n_usage = len(self._usage_tables)
        return out[:n_usage] + budget_text + out[n_usage:]

    def render(self, openmetrics: bool = False) -> bytes:
        """The /metrics body: OpenMetrics 1.0.0 when `openmetrics`, else text format 0.0.4."""
        return render(self.snapshot(), openmetrics)

    def samples(self) -> dict[SampleKey, float]:
        """Every exported sample: (sample name, frozenset of label pairs) -> value as float."""
        out: dict[SampleKey, float] = {}
        for data in self.families():
            for sample_name, labels, value in data.samples():
                out[(sample_name, frozenset(labels.items()))] = float(value)
        return out

    def get(self, name: str, **labels: str) -> float | None:
        """One sample's value (e.g. get("llm_tokens_total", ..., token_type="input")), or None."""
        return self.samples().get((name, frozenset(labels.items())))

    def get_decimal(self, name: str, **labels: str) -> Decimal | None:
        """The exact value of a money series (cost, budget spend, price, budget limit), or None."""
        try:
            data = self.family(name)
        except KeyError:
            return None
        if not data.exact or set(labels) != set(data.labelnames):
            return None
        key = tuple(labels[n] for n in data.labelnames)
        for k, v in zip(data.keys, data.values):
            if k == key:
                return Decimal(v)
        return None

    @property
    def budget_dropped(self) -> int:
        """Budget-matching calls whose period was not exported any more (late) or not yet."""
        return self._budgets.dropped

    def as_collector(self) -> StoreCollector:
        """A prometheus_client collector over this store (register it in any CollectorRegistry)."""
        return StoreCollector(self)



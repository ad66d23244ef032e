"""UsageMetrics: the metric store of genai-meter (a `Recorder`), rendered for Prometheus.

Counts every LLM call into the contract's metrics (genai_meter.contract; docs/metrics.md), with
bounded labels (exporters.labels, exporters.series), exact money (integer 10^-12 USD, Decimal when
read), and budget counters per calendar period (exporters.budgets). The per-call hot path is
`exporters.recording.CallCounter`, this store's base; here: self-metrics, info metrics, reading.

Thread-safe: one lock guards all state; `record_*` hold it for a few dict updates and never do
I/O, so they are safe on a span-ending thread. `render` copies the values under the lock and
formats outside it. Never raises on span content; `record_self` raises ValueError on a name or
label set that is not in the contract (a programming error).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal

from genai_meter import __version__, contract
from genai_meter.config import Config
from genai_meter.contract import Contract
from genai_meter.exporters.bridge import StoreCollector
from genai_meter.exporters.exposition import FamilyText, render
from genai_meter.exporters.families import FamilyData
from genai_meter.exporters.recording import CallCounter, clock_ns
from genai_meter.exporters.series import CounterTable, HistogramTable, SeriesTable, label_pairs
from genai_meter.records import Cost, LLMCall, ToolCall

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
    contract.SELF_PRICING_INFO: (("catalog_version", "overrides_version", "catalog_date"),
                                 "Price catalog and override versions in use, and the day the catalog dates from "
                                 "(value 1)."),
    contract.SELF_PRICING_CATALOG_TIME: ((), "Unix time of the UTC day the price catalog in use dates from."),
}
_SELF_MAX_SERIES = 1000


class UsageMetrics(CallCounter):
    """The usage-metric store: a `Recorder` that renders Prometheus text and OpenMetrics.

    `clock` (seconds since the epoch) decides which budget periods are current; `budget_grace_s`
    is how long the previous period stays exported after a rollover (exporters.budgets).
    """

    def __init__(self, config: Config, *, clock: Callable[[], float] = time.time,
                 catalog_version: str = "", overrides_version: str = "", catalog_date: date | None = None,
                 budget_grace_s: float = 300.0, serve: bool = False) -> None:
        super().__init__(config, Contract.from_config(config), budget_grace_s=budget_grace_s)
        self._clock = clock
        self._clock_ns = clock_ns(clock)
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
        for dim in self.contract.dimensions:
            self._label_overflow.touch((dim,))
        for table in self._usage_tables:
            key = (table.name,)
            series_overflow.touch(key)
            table.on_fold = lambda key=key: series_overflow.add(key, 1)
        self._self[contract.SELF_BUILD_INFO].set((__version__,), 1)
        self._by_name: dict[str, SeriesTable] = {t.name: t for t in self._tables()}
        counted_idx = self._counted.slot(())
        assert counted_idx is not None  # the first series of a fresh table always fits
        self._counted_idx = counted_idx
        self._pricing_key: tuple[str, str, str] | None = None
        self.set_pricing_info(catalog_version, overrides_version, catalog_date)

    # -- Recorder ---------------------------------------------------------------------------

    def record_call(self, call: LLMCall, cost: Cost | None) -> None:
        """Count one inference call; `cost` None means unpriced (counted, but no cost)."""
        budgets = self._budgets.matching(call) if self._has_budgets else ()  # pure: outside the lock
        with self._lock:
            self._count(call, cost, budgets)

    def record_group(self, call: LLMCall, prices: dict[str, Decimal] | None, calls: int, tokens: Sequence[int],
                     costs: Sequence[int], duration_counts: Sequence[int], durations: Sequence[float],
                     ttft_counts: Sequence[int], ttfts: Sequence[float]) -> bool:
        """Count `calls` calls labelled like `call` at once (metering.tally): their token and cost
        sums (costs in 10^-12 USD; `prices` their unit prices, None: unpriced), histogram bucket counts
        and observed values in order. The same figures as `record_call` for each; False (nothing
        counted) when that needs the calls one by one: a series not there yet, a label overflow, a
        budget, a price the gauge does not show yet."""
        if self._has_budgets and self._budgets.matching(call):
            return False
        with self._lock:
            return self._count_group(call, prices, calls, tokens, costs, duration_counts, durations,
                                     ttft_counts, ttfts)

    def record_tool(self, tool: ToolCall) -> None:
        """Count one tool execution by tool name (names past limits.max_tool_names fold into __overflow__)."""
        name = tool.tool if tool.tool in self._tool_names else self._admit_tool(tool.tool)
        key = (self._resolver.base(tool.service), self._resolver.base(tool.environment), name,
               tool.status or contract.STATUS_OK)
        with self._lock:
            self.tools.add(key, 1)

    def _admit_tool(self, name: str) -> str:
        text = self._resolver.base(name)
        with self._lock:
            if len(self._tool_names) < self.config.limits.max_tool_names:
                self._tool_names.add(text)
                return text
        return contract.OVERFLOW if text not in self._tool_names else text

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

    def set_custom_units(self, units: Sequence[str]) -> None:
        """The custom units (`custom.<name>`) that keep their own `unit` / `cost_type` label: those the
        override file prices; others are counted under `__overflow__`."""
        with self._lock:
            self._unit_labels.admit(units)

    # -- info -------------------------------------------------------------------------------

    def set_pricing_info(self, catalog_version: str, overrides_version: str, catalog_date: date | None = None) -> None:
        """Set genai_meter_pricing_info{catalog_version, overrides_version, catalog_date} (the old set goes
        to 0) and, with a date, genai_meter_pricing_catalog_timestamp_seconds (UTC midnight of that day)."""
        day = catalog_date.isoformat() if catalog_date is not None else contract.UNKNOWN
        key = (catalog_version or contract.UNKNOWN, overrides_version or "none", day)
        table = self._self[contract.SELF_PRICING_INFO]
        with self._lock:
            if self._pricing_key is not None and self._pricing_key != key:
                table.set(self._pricing_key, 0)
            table.set(key, 1)
            self._pricing_key = key
            if catalog_date is not None:
                midnight = datetime(catalog_date.year, catalog_date.month, catalog_date.day, tzinfo=UTC)
                self._self[contract.SELF_PRICING_CATALOG_TIME].set((), int(midnight.timestamp()))

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
        for budget, period, spent, used in self._budgets.visible(self._clock_ns()):
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
                    out.append(FamilyText(table.kind, table.name, table.help, table.unit, table.heads,
                                          table.float_values(), exact=table.exact and not table.pico))
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



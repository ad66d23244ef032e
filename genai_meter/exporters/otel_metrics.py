"""OTelMetricsRecorder: the contract's metrics through an OpenTelemetry MeterProvider (push over OTLP).

For apps that push metrics (OTLP to a Collector or to Prometheus' OTLP receiver) instead of being
scraped, e.g. several worker processes each pushing with their own `service.instance.id`.

Naming: each instrument is named exactly as the contract's Prometheus name (underscores, counters
ending in `_total`, histograms ending in `_seconds` with unit `s`), and counts carry only UCUM
annotation units (`{request}`, `{token}`, `{USD}`), which every translator drops. So the standard
OTLP->Prometheus translation gives back the contract's names unchanged, whichever strategy runs:
- UnderscoreEscapingWithSuffixes (Prometheus' OTLP receiver default, the Collector's prometheus
  and prometheusremotewrite exporters): name tokens are kept, `total` is moved to the end for
  monotonic sums (already there), the unit suffix `seconds` is skipped because the name already
  has it, annotation units add nothing;
- NoUTF8EscapingWithSuffixes: `_total`/`_seconds` already end the names, nothing is appended;
- NoTranslation / `add_metric_suffixes: false`: names pass through as they are;
- the Python SDK's PrometheusMetricReader (same rules, through prometheus_client).
A unit such as `USD` would not work: translators keep its case (`_USD`), and `$` becomes `dollars`.

Values come from an internal UsageMetrics store (same labels, same caps and folding, exact money,
budget periods): counters and gauges are asynchronous instruments whose callbacks read the store,
so sums stay exact until exported and old budget periods stop being exported. Histograms are
synchronous instruments recorded with the store's (folded) labels, unweighted.

The SDK has its own cardinality limit per instrument (2000 by default, extra attribute sets go
to `otel_metric_overflow="true"`): give the MetricReader `cardinality_limits` above
`limits.max_series_per_metric` + max(10, a tenth of it) + 10, so the store's caps decide.

Thread-safe; `record_*` never block on I/O (exporting happens on the reader's thread).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from functools import partial

from opentelemetry.metrics import CallbackOptions, Histogram, MeterProvider, Observation

from genai_meter import __version__, contract
from genai_meter.config import Config
from genai_meter.exporters.store import UsageMetrics
from genai_meter.records import Cost, LLMCall, ToolCall

METER_NAME = "genai_meter"


@dataclass(frozen=True)
class InstrumentSpec:
    """One OTel instrument: its name, kind (counter | gauge | histogram), unit and description."""

    name: str
    kind: str
    unit: str
    description: str


def instrument_specs(config: Config) -> list[InstrumentSpec]:
    """Every instrument the recorder creates, in exposition order."""
    n = contract.MetricNames(config.metric_prefix)
    units = {n.requests: "{request}", n.tokens: "{token}", n.cost: "{USD}", n.unpriced: "{request}",
             n.unmetered: "{request}", n.budget_spend: "{USD}", n.budget_tokens: "{token}",
             n.duration: "s", n.ttft: "s", n.units: "{unit}", n.partially_priced: "{request}",
             n.estimated: "{request}"}
    store = UsageMetrics(config)
    return [InstrumentSpec(d.name, d.kind, units.get(d.name, ""), d.help) for d in store.families()]


class OTelMetricsRecorder:
    """A `Recorder` that reports the contract's metrics through `meter_provider`."""

    def __init__(self, config: Config, meter_provider: MeterProvider, *,
                 clock: Callable[[], float] = time.time, catalog_version: str = "",
                 overrides_version: str = "") -> None:
        self.config = config
        self.store = UsageMetrics(config, clock=clock, catalog_version=catalog_version,
                                  overrides_version=overrides_version)
        meter = meter_provider.get_meter(METER_NAME, __version__)
        names = self.store.contract.names
        self._histograms: dict[str, Histogram] = {}
        for spec in instrument_specs(config):
            if spec.kind == "histogram":
                buckets = contract.DURATION_BUCKETS if spec.name == names.duration else contract.TTFT_BUCKETS
                self._histograms[spec.name] = meter.create_histogram(
                    spec.name, unit=spec.unit, description=spec.description,
                    explicit_bucket_boundaries_advisory=list(buckets))
            elif spec.kind == "counter":
                meter.create_observable_counter(spec.name, callbacks=[partial(self._observe, spec.name)],
                                                unit=spec.unit, description=spec.description)
            else:
                meter.create_observable_gauge(spec.name, callbacks=[partial(self._observe, spec.name)],
                                              unit=spec.unit, description=spec.description)
        self._duration = self._histograms[names.duration]
        self._ttft = self._histograms[names.ttft]
        self._duration_labels = self.store.contract.duration_labels
        self._ttft_labels = self.store.contract.ttft_labels
        self._attr_cache: dict[tuple[str, ...], dict[str, str]] = {}

    def _observe(self, name: str, options: CallbackOptions) -> Iterable[Observation]:
        data = self.store.family(name)
        exact = data.exact
        return [Observation(float(value) if exact else value, attrs) for attrs, value in data.series()]

    # -- Recorder ---------------------------------------------------------------------------

    def record_call(self, call: LLMCall, cost: Cost | None) -> None:
        """Count one inference call; `cost` None means unpriced."""
        dur_key, ttft_key = self.store._record(call, cost)
        if dur_key is not None:
            self._duration.record(max(call.duration_s, 0.0), self._attributes(self._duration_labels, dur_key))
        if ttft_key is not None and call.ttft_s is not None:
            self._ttft.record(max(call.ttft_s, 0.0), self._attributes(self._ttft_labels, ttft_key))

    def _attributes(self, names: tuple[str, ...], key: tuple[str, ...]) -> dict[str, str]:
        """Attribute dicts of histogram series, built once (bounded: keys are capped series)."""
        attrs = self._attr_cache.get(key)
        if attrs is None:
            attrs = self._attr_cache[key] = dict(zip(names, key))
        return attrs

    def record_skip(self, reason: str) -> None:
        """Count one span that was not an inference call."""
        self.store.record_skip(reason)

    def record_tool(self, tool: ToolCall) -> None:
        """Count one tool execution (observed by the tool-call counter like the other counters)."""
        self.store.record_tool(tool)

    def record_self(self, name: str, amount: float = 1, **labels: str) -> None:
        """Add to a genai_meter_* self-metric counter."""
        self.store.record_self(name, amount, **labels)

    def set_pricing_info(self, catalog_version: str, overrides_version: str, catalog_date: date | None = None) -> None:
        """Set genai_meter_pricing_info and the catalog's date (see UsageMetrics.set_pricing_info)."""
        self.store.set_pricing_info(catalog_version, overrides_version, catalog_date)

    def set_custom_units(self, units: Sequence[str]) -> None:
        """The custom units that keep their own label (see UsageMetrics.set_custom_units)."""
        self.store.set_custom_units(units)


__all__ = ["OTelMetricsRecorder", "InstrumentSpec", "instrument_specs"]

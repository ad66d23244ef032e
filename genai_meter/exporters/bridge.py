"""prometheus_client bridge: expose a UsageMetrics store through an app's own registry.

    registry.register(store.as_collector())   # or prometheus_client.REGISTRY

`collect()` runs on the scraping thread and yields prometheus_client metric families built from a
consistent snapshot of the store (money converted to float there, never earlier). No `_created`
samples. This path is slower than `UsageMetrics.render` (prometheus_client formats every sample
itself); use it to share one /metrics endpoint with an app's own metrics.

Note: prometheus_client's multiprocess mode merges only its own Counter/Gauge/Histogram objects
(mmap files per process), not custom collectors; with several worker processes, push over OTLP
instead (genai_meter.exporters.otel_metrics) or run `genai-meter serve` (docs/metrics.md).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from genai_meter.exporters.families import FamilyData


class FamilySource(Protocol):
    """Anything with a consistent snapshot of its families (a `UsageMetrics` store)."""

    def families(self) -> Sequence[FamilyData]: ...


def _family(data: FamilyData) -> Metric:
    labels = list(data.labelnames)
    if data.kind == "counter":
        counter = CounterMetricFamily(data.name, data.help, labels=labels, unit=data.unit)
        for key, value in zip(data.keys, data.values):
            counter.add_metric(list(key), float(value))
        return counter
    if data.kind == "gauge":
        gauge = GaugeMetricFamily(data.name, data.help, labels=labels, unit=data.unit)
        for key, value in zip(data.keys, data.values):
            gauge.add_metric(list(key), float(value))
        return gauge
    histogram = HistogramMetricFamily(data.name, data.help, labels=labels, unit=data.unit)
    les = [repr(b) for b in data.bounds] + ["+Inf"]
    for key, (counts, total) in zip(data.keys, data.values):
        cumulative = 0
        buckets: list[tuple[str, float]] = []
        for le, count in zip(les, counts):
            cumulative += count
            buckets.append((le, cumulative))
        histogram.add_metric(list(key), buckets, total)
    return histogram


class StoreCollector(Collector):
    """A prometheus_client Collector reading a UsageMetrics store."""

    def __init__(self, store: FamilySource) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        for data in self.store.families():
            yield _family(data)

    def describe(self) -> Iterator[Metric]:
        """Empty families with the right names, so `register` detects name clashes."""
        for data in self.store.families():
            yield _family(data.__class__(data.kind, data.name, data.help, data.unit, data.labelnames,
                                         [], [], exact=data.exact, bounds=data.bounds))

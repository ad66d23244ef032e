"""/metrics with 100k active series: render time and memory per series of the metric store.

The store (`UsageMetrics`) gets 20,000 LLM calls, each with its own (customer, feature) pair, and
tokens and cost in two classes each: 5 counter series per call (requests, tokens x 2, cost x 2),
100,000 series in all (`limits.max_series_per_metric: 40000`, so that nothing folds). The
calls report no duration, so no histogram is involved: the same 100k counter series are then
built in prometheus_client (labelled Counters, one `inc` each) as the same-run reference.

Measured: the time of one render (best of several), OpenMetrics and classic text, and the memory
the series hold (tracemalloc: what is still allocated after the series were built, divided by the
series; for the store this includes its label caches).

Targets (docs/performance.md): <= 200 ms per render, <= 1 KiB per series.
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from collections.abc import Callable, Iterator
from decimal import Decimal

from benchmarks.harness import report
from genai_meter.config import Config
from genai_meter.exporters import UsageMetrics
from genai_meter.records import Cost, LLMCall, TokenCounts

CUSTOMERS = 1000
FEATURES = 20
CALLS = CUSTOMERS * FEATURES  # one per (customer, feature)
SERIES_PER_CALL = 5
RENDER_TARGET_MS = 200.0
BYTES_TARGET = 1024
END_NS = 1_795_449_600 * 10**9
RATES = {"input": Decimal("2.5"), "output": Decimal("10")}


def _calls() -> Iterator[tuple[LLMCall, Cost]]:
    """CALLS calls, each with a label set of its own; strings made here, as the pipeline would."""
    for i in range(CALLS):
        customer, feature = f"customer-{i // FEATURES:04d}", f"feature-{i % FEATURES:02d}"
        tokens = TokenCounts(input=1000 + i % 997, output=100 + i % 89)
        cost = Cost(by_type={"input": Decimal(tokens.input) * RATES["input"] / 1_000_000,
                             "output": Decimal(tokens.output) * RATES["output"] / 1_000_000},
                    price_source="genai-prices", price_version="bench", price_entry="openai/gpt-4o",
                    unit_prices=RATES)
        yield LLMCall(service="checkout", environment="prod", provider="openai", model="gpt-4o",
                      operation="chat", status="ok", error_type="", duration_s=float("nan"), ttft_s=None,
                      tokens=tokens, end_ns=END_NS, dimensions={"customer": customer, "feature": feature}), cost


CONFIG = Config(limits={"max_series_per_metric": 2 * CALLS})


def _store() -> UsageMetrics:
    store = UsageMetrics(CONFIG)
    for call, cost in _calls():
        store.record_call(call, cost)
    return store


def _client_registry():
    """The same 100k counter series in prometheus_client: labelled Counters, one inc per series."""
    from prometheus_client import CollectorRegistry, Counter

    labels = ["service_name", "environment", "provider", "model", "operation", "customer", "feature"]
    registry = CollectorRegistry()
    requests = Counter("llm_requests", "LLM inference calls.", labels + ["status"], registry=registry)
    tokens = Counter("llm_tokens", "Tokens of LLM calls.", labels + ["token_type"], registry=registry)
    cost = Counter("llm_cost_usd", "Cost of LLM calls in US dollars.", labels + ["cost_type"], registry=registry)
    for call, money in _calls():
        values = (call.service, call.environment, call.provider, call.model, call.operation,
                  call.dimensions["customer"], call.dimensions["feature"])
        requests.labels(*values, "ok").inc()
        tokens.labels(*values, "input").inc(call.tokens.input)
        tokens.labels(*values, "output").inc(call.tokens.output)
        cost.labels(*values, "input").inc(float(money.by_type["input"]))
        cost.labels(*values, "output").inc(float(money.by_type["output"]))
    return registry


def _built_with_memory(build: Callable[[], object]) -> tuple[object, int]:
    """`build()` and the bytes it left allocated (tracemalloc; garbage collected first)."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    built = build()
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return built, after - before


def _render_ms(render: Callable[[], bytes], repeats: int) -> tuple[float, int]:
    best, size = float("inf"), 0
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        body = render()
        best = min(best, time.perf_counter() - start)
        size = len(body)
    return best * 1000, size


def _series(store: UsageMetrics) -> int:
    return sum(len(table) for table in store._tables())


def main() -> None:
    from prometheus_client import generate_latest
    from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

    store, store_bytes = _built_with_memory(_store)
    assert isinstance(store, UsageMetrics)
    series = _series(store)
    usage_series = CALLS * SERIES_PER_CALL
    assert sum(len(t) for t in (store.requests, store.tokens, store.cost)) == usage_series, "a family folded"
    registry, client_bytes = _built_with_memory(_client_registry)

    om_ms, om_size = _render_ms(lambda: store.render(True), 7)
    text_ms, text_size = _render_ms(lambda: store.render(False), 7)
    ref_text_ms, _ = _render_ms(lambda: generate_latest(registry), 2)  # type: ignore[arg-type]
    ref_om_ms, _ = _render_ms(lambda: generate_openmetrics(registry), 2)  # type: ignore[arg-type]
    per_series = store_bytes / series
    ref_per_series = client_bytes / usage_series

    rows = []
    for label, ms, ref_ms, size in (("OpenMetrics", om_ms, ref_om_ms, om_size),
                                    ("text 0.0.4", text_ms, ref_text_ms, text_size)):
        verdict = "meets" if ms <= RENDER_TARGET_MS else "MISSES"
        rows.append((f"render {label}, UsageMetrics", f"{ms:.1f} ms",
                     f"{ms / ref_ms:.3f}x prometheus_client ({size / 1e6:.1f} MB); "
                     f"target <= {RENDER_TARGET_MS:.0f} ms: {verdict}"))
        rows.append((f"render {label}, prometheus_client", f"{ref_ms:.1f} ms", "reference"))
    verdict = "meets" if per_series <= BYTES_TARGET else "MISSES"
    rows.append(("memory per series, UsageMetrics", f"{per_series:.0f} B",
                 f"{per_series / ref_per_series:.2f}x prometheus_client; target <= {BYTES_TARGET} B: {verdict}"))
    rows.append(("memory per series, prometheus_client", f"{ref_per_series:.0f} B", "reference"))
    report(f"/metrics with {series:,} active series ({usage_series:,} usage counter series + self-metrics)", rows)


if __name__ == "__main__":
    main()

"""In-process CostSpanProcessor: time added per span, against the same SDK with no processor.

Two measures of the same thing:
* direct: `CostSpanProcessor.on_end` timed over the ReadableSpans the SDK handed to processors
  (captured once), the most precise figure of what the processor adds;
* through the SDK: spans started and ended on a TracerProvider with and without the processor,
  runs taking turns; the difference of each adjacent pair, median over the rounds (includes the
  SDK's call into the processor and the garbage collector's share; noisier, a difference of two
  ~15 µs figures).

Targets (docs/performance.md): <= 1 µs per non-LLM span, <= 10 µs per LLM span.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from benchmarks.harness import report
from genai_meter.collector_processor import CostSpanProcessor
from genai_meter.config import Config

N = 20_000
ROUNDS = 11  # runs of N spans each, with and without the processor taking turns

PLAIN_ATTRIBUTES = {
    "http.request.method": "GET", "url.path": "/api/orders", "http.response.status_code": 200,
    "server.address": "orders.internal", "network.protocol.version": "1.1", "user_agent.original": "curl/8",
}
LLM_ATTRIBUTES = {
    "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
    "gen_ai.response.model": "gpt-4o-2024-08-06", "gen_ai.usage.input_tokens": 1200,
    "gen_ai.usage.output_tokens": 300, "gen_ai.usage.cache_read.input_tokens": 400,
    "gen_ai.response.finish_reasons": ("stop",), "customer.id": "acme", "feature.id": "search",
    "server.address": "api.openai.com",
}
RESOURCE = {"service.name": "bench", "deployment.environment.name": "prod"}


class _Capture(SpanExporter):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans) -> SpanExportResult:
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS


def _provider(processor: CostSpanProcessor | None) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create(RESOURCE))
    if processor is not None:
        provider.add_span_processor(processor)
    return provider


def _spans(provider: TracerProvider, name: str, attributes: dict) -> None:
    tracer = provider.get_tracer("bench")
    for _ in range(N):
        tracer.start_span(name, attributes=attributes).end()


def _timed(run: Callable[[], object]) -> float:
    gc.collect()
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def _direct_us(name: str, attributes: dict) -> float:
    """Best time of `on_end` per span over N spans the SDK ended (ReadableSpans, as processors get them)."""
    capture = _Capture()
    provider = TracerProvider(resource=Resource.create(RESOURCE))
    provider.add_span_processor(SimpleSpanProcessor(capture))
    _spans(provider, name, attributes)
    processor = CostSpanProcessor(Config())
    on_end = processor.on_end
    spans = capture.spans
    for span in spans[:100]:  # warm caches (price lookups, series)
        on_end(span)
    return min(_timed(lambda: [on_end(span) for span in spans]) for _ in range(ROUNDS)) / N * 1e6


def _through_sdk_us(name: str, attributes: dict) -> tuple[float, float, float]:
    """(SDK alone, SDK + processor, median added) in µs per span, runs taking turns."""
    bare, metered = _provider(None), _provider(CostSpanProcessor(Config()))
    _spans(metered, name, attributes)  # warm caches (price lookups, series)
    pairs = [(_timed(lambda: _spans(bare, name, attributes)), _timed(lambda: _spans(metered, name, attributes)))
             for _ in range(ROUNDS)]
    base = min(p[0] for p in pairs) / N * 1e6
    with_processor = min(p[1] for p in pairs) / N * 1e6
    added = statistics.median(m - b for b, m in pairs) / N * 1e6
    return base, with_processor, added


def main() -> None:
    rows = []
    for label, name, attributes, target in (
        ("non-LLM span", "GET /api/orders", PLAIN_ATTRIBUTES, 1.0),
        ("LLM span", "chat gpt-4o", LLM_ATTRIBUTES, 10.0),
    ):
        direct = _direct_us(name, attributes)
        base, metered, added = _through_sdk_us(name, attributes)
        verdict = "meets" if direct <= target else "MISSES"
        rows.append((f"{label}: CostSpanProcessor.on_end", f"{direct:.2f} µs/span",
                     f"{direct / base:.1%} of the SDK alone; target <= {target:g} µs: {verdict}"))
        rows.append((f"{label}: SDK alone (start + end)", f"{base:.2f} µs/span", "reference"))
        rows.append((f"{label}: SDK + CostSpanProcessor", f"{metered:.2f} µs/span",
                     f"{metered / base:.2f}x reference"))
        rows.append((f"{label}: added, through the SDK", f"{added:.2f} µs/span",
                     "median of paired differences (noisy cross-check)"))
    report(f"in-process processor ({N} spans per run, {ROUNDS} rounds)", rows)


if __name__ == "__main__":
    main()

"""In-process CostSpanProcessor: time added per span, against the same SDK with no processor.

Targets (docs/performance.md): <= 1 µs per non-LLM span, <= 10 µs per LLM span.
"""

from __future__ import annotations

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from benchmarks.harness import best_of, report
from genai_meter.collector_processor import CostSpanProcessor
from genai_meter.config import Config

N = 20_000

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


def _provider(with_processor: bool) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": "bench", "deployment.environment.name": "prod"}))
    if with_processor:
        provider.add_span_processor(CostSpanProcessor(Config()))
    return provider


def _spans(provider: TracerProvider, name: str, attributes: dict) -> None:
    tracer = provider.get_tracer("bench")
    for _ in range(N):
        tracer.start_span(name, attributes=attributes).end()


def _per_span_us(attributes: dict, name: str) -> tuple[float, float]:
    bare, metered = _provider(False), _provider(True)
    _spans(metered, name, attributes)  # warm caches (price lookups, series)
    base = best_of(lambda: _spans(bare, name, attributes)) / N * 1e6
    with_processor = best_of(lambda: _spans(metered, name, attributes)) / N * 1e6
    return base, with_processor


def main() -> None:
    rows = []
    for label, name, attributes, target in (
        ("non-LLM span", "GET /api/orders", PLAIN_ATTRIBUTES, 1.0),
        ("LLM span", "chat gpt-4o", LLM_ATTRIBUTES, 10.0),
    ):
        base, metered = _per_span_us(attributes, name)
        added = metered - base
        rows.append((f"{label}: SDK alone", f"{base:.2f} µs/span", "reference"))
        rows.append((f"{label}: SDK + CostSpanProcessor", f"{metered:.2f} µs/span",
                     f"{metered / base:.2f}x reference"))
        verdict = "meets" if added <= target else "MISSES"
        rows.append((f"{label}: added by genai-meter", f"{added:.2f} µs/span", f"target <= {target:g} µs: {verdict}"))
    report(f"in-process processor ({N} spans per run, best of 7)", rows)


if __name__ == "__main__":
    main()

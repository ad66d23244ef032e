"""A real LLM app that sends its spans to `genai-meter serve` over OTLP/HTTP.

    python -m tests.apps.exporting_app INSTRUMENTATION BASE_URL OTLP_TRACES_URL

The openai SDK with one real instrumentation (openai_v2, openllmetry or openinference) makes two
chat calls and one streamed chat call against BASE_URL (a FakeOpenAI server); the real OTel SDK's
OTLP/HTTP exporter sends the spans to OTLP_TRACES_URL; the app flushes and exits 0.
"""

from __future__ import annotations

import sys

import openai
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from tests.apps.instrumented_app import instrumentor


def main(name: str, base_url: str, traces_url: str) -> int:
    provider = TracerProvider(resource=Resource.create(
        {"service.name": f"chatbot-{name}", "deployment.environment.name": "test", "organization.id": "acme"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=traces_url)))
    trace.set_tracer_provider(provider)
    instrumentor(name).instrument()
    client = openai.OpenAI(base_url=base_url, api_key="test-key", max_retries=0)
    messages = [{"role": "user", "content": "hello"}]
    tracer = trace.get_tracer("exporting-app")
    with tracer.start_as_current_span("turn", attributes={"gen_ai.conversation.id": f"conv-{name}",
                                                          "enduser.id": "alice@example.com"}):
        for _ in range(2):
            client.chat.completions.create(model="gpt-4o", messages=messages)
        stream = client.chat.completions.create(model="gpt-4o", messages=messages, stream=True,
                                                stream_options={"include_usage": True})
        for _ in stream:
            pass
    assert provider.force_flush(30_000)
    provider.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))

"""A real LLM app whose calls are billed beyond the standard token price: service tiers, batch, audio,
generated images and custom units, metered in process and sent to a `genai-meter serve` over OTLP.

    python -m tests.apps.pricing_app INSTRUMENTATION BASE_URL METRICS_LISTEN OTLP_TRACES_URL

The openai SDK with one real instrumentation (openai_v2, openllmetry or openinference) calls BASE_URL (a
FakeOpenAI server): gpt-5-mini at the flex tier, gpt-4o at the priority tier, gpt-audio, and dall-e-3
images, as the service `chatbot`; then gpt-4o-mini as the service `nightly-batch` (the config's batch
rule makes those batch calls). The instrumentation is instrumented once, with a tracer provider that starts
each span in the provider of the service the app works for at the time (`ServiceProviders`): instrumenting
again for another provider stacks OpenLLMetry's wrappers (its uninstrument leaves them in place). The app's own spans (scope `chatbot.app`) meter what no instrumentation
reports: an image through `genai_meter.usage.image_1024x1024_hd`, web searches, and a custom unit the
override file has no price for. The genai-meter config comes from $GENAI_METER_CONFIG. Prints "READY"
once every span is metered and exported, then serves /metrics until stdin closes.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import openai
from opentelemetry import trace

from tests.apps.instrumented_app import instrumentor

MESSAGES = [{"role": "user", "content": "hello"}]


class ServiceProviders(trace.TracerProvider):
    """Tracer providers by service: each span starts in the provider of the service `current` names."""

    def __init__(self, providers: dict[str, Any], current: str) -> None:
        self.providers = providers
        self.current = current

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        return _ServiceTracer(self, args, kwargs)


class _ServiceTracer(trace.Tracer):
    def __init__(self, owner: ServiceProviders, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.owner, self.args, self.kwargs = owner, args, kwargs

    def _tracer(self) -> trace.Tracer:
        return self.owner.providers[self.owner.current].get_tracer(*self.args, **self.kwargs)  # type: ignore[no-any-return]

    def start_span(self, *args: Any, **kwargs: Any) -> trace.Span:
        return self._tracer().start_span(*args, **kwargs)

    @contextmanager
    def start_as_current_span(self, *args: Any, **kwargs: Any) -> Iterator[trace.Span]:
        with self._tracer().start_as_current_span(*args, **kwargs) as span:
            yield span


def providers(metrics_listen: str, otlp_url: str) -> tuple[object, object, object]:
    """(the in-process processor, the chatbot's TracerProvider, the nightly job's)."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    from genai_meter.collector_processor import CostSpanProcessor

    processor = CostSpanProcessor()
    processor.serve_metrics(metrics_listen)
    made = []
    for service in ("chatbot", "nightly-batch"):
        provider = TracerProvider(resource=Resource.create(
            {"service.name": service, "deployment.environment.name": "test"}))
        provider.add_span_processor(processor)
        provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=otlp_url)))
        made.append(provider)
    return processor, made[0], made[1]


def chatbot_calls(client: openai.OpenAI) -> None:
    client.chat.completions.create(model="gpt-5-mini", messages=MESSAGES, service_tier="flex")
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES, service_tier="priority")
    client.chat.completions.create(model="gpt-audio", messages=MESSAGES, modalities=["text", "audio"],
                                   audio={"voice": "alloy", "format": "wav"})
    client.images.generate(model="dall-e-3", prompt="a lighthouse", size="1024x1024", quality="hd", n=2)


def own_spans(tracer: object) -> None:
    """Spans the app writes itself: billed units no instrumentation reports."""
    base = {"gen_ai.operation.name": "generate_image", "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "dall-e-3"}
    with tracer.start_as_current_span("generate_image dall-e-3",  # type: ignore[attr-defined]
                                      attributes={**base, "genai_meter.usage.image_1024x1024_hd": 1}):
        pass
    with tracer.start_as_current_span("chat gpt-4o", attributes={  # type: ignore[attr-defined]
            "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 100,
            "genai_meter.usage.web_searches": 2, "genai_meter.usage.voice_minutes": 3}):
        pass


def main(argv: list[str]) -> int:
    name, base_url, metrics_listen, otlp_url = argv[:4]
    processor, chatbot, nightly = providers(metrics_listen, otlp_url)
    client = openai.OpenAI(base_url=base_url, api_key="test-key", max_retries=0)
    services = ServiceProviders({"chatbot": chatbot, "nightly-batch": nightly}, "chatbot")
    instrumented = instrumentor(name)
    instrumented.instrument(tracer_provider=services)
    chatbot_calls(client)
    own_spans(chatbot.get_tracer("chatbot.app"))  # type: ignore[attr-defined]
    services.current = "nightly-batch"
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    instrumented.uninstrument()
    for provider in (chatbot, nightly):
        provider.force_flush()  # type: ignore[attr-defined]
    print("READY", flush=True)
    sys.stdin.read()  # serve /metrics until the test closes our stdin
    processor.shutdown()  # type: ignore[attr-defined]
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

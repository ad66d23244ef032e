"""Synthetic LLM traffic for the demo: real OTel SDK spans, exported over OTLP/HTTP.

The spans carry the current GenAI semantic-convention attributes an instrumented app would emit
(provider, request and response model, token usage with cached and reasoning parts) plus the
attribution attributes the default config reads (customer.id, feature.id). Nothing here calls a
paid API.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Status, StatusCode


@dataclass(frozen=True)
class ModelProfile:
    """A model the demo calls, with typical prompt and completion sizes."""

    provider: str
    model: str
    response_model: str
    prompt_tokens: int
    completion_tokens: int
    cache_share: float  # share of the prompt served from the prompt cache
    reasoning_share: float  # share of the completion that is reasoning


MODELS = (
    ModelProfile("openai", "gpt-4o", "gpt-4o-2024-08-06", 2400, 450, 0.5, 0.0),
    ModelProfile("openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18", 1800, 300, 0.3, 0.0),
    ModelProfile("openai", "o3-mini", "o3-mini-2025-01-31", 1500, 1400, 0.0, 0.6),
    ModelProfile("anthropic", "claude-sonnet-4-20250514", "claude-sonnet-4-20250514", 3000, 600, 0.6, 0.0),
    ModelProfile("self-hosted", "llama-3.1-70b-ft", "llama-3.1-70b-ft", 1200, 250, 0.0, 0.0),  # unpriced unless overridden
)
CUSTOMERS = ("acme", "globex", "initech", "umbrella", "hooli")
FEATURES = ("search", "chat", "summarize")
SERVICES = (("support-bot", "prod"), ("search-api", "prod"), ("support-bot", "staging"))


class Traffic:
    """Sends `rate` LLM calls per second as spans to an OTLP/HTTP endpoint, from a daemon thread."""

    def __init__(self, endpoint: str, rate: float = 10.0, seed: int = 7) -> None:
        self.endpoint = endpoint
        self.rate = rate
        self.sent = 0
        self._random = random.Random(seed)
        self._stop = threading.Event()
        self._providers = {
            service: TracerProvider(resource=Resource.create(
                {"service.name": service[0], "deployment.environment.name": service[1], "project.id": "atlas"}))
            for service in SERVICES
        }
        for provider in self._providers.values():
            provider.add_span_processor(BatchSpanProcessor(
                OTLPSpanExporter(endpoint=endpoint, timeout=5), schedule_delay_millis=500))
        self._thread = threading.Thread(target=self._run, name="genai-meter-demo-traffic", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop sending and flush what was made (bounded by the exporters' timeouts)."""
        self._stop.set()
        self._thread.join(timeout=5)
        for provider in self._providers.values():
            provider.shutdown()

    def _run(self) -> None:
        interval = 1.0 / self.rate
        next_at = time.monotonic()
        while not self._stop.is_set():
            self.emit_one()
            next_at += interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def emit_one(self) -> None:
        """Emit the span of one synthetic call."""
        rnd = self._random
        profile = rnd.choice(MODELS)
        service = rnd.choice(SERVICES)
        tracer = self._providers[service].get_tracer("genai-meter.demo")
        prompt = max(1, int(rnd.gauss(profile.prompt_tokens, profile.prompt_tokens / 4)))
        completion = max(1, int(rnd.gauss(profile.completion_tokens, profile.completion_tokens / 4)))
        failed = rnd.random() < 0.02
        start = time.time_ns()
        duration_ns = int(rnd.uniform(0.4, 6.0) * 1e9)
        span = tracer.start_span(f"chat {profile.model}", start_time=start - duration_ns, attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": profile.provider,
            "gen_ai.request.model": profile.model,
            "customer.id": rnd.choice(CUSTOMERS),
            "feature.id": rnd.choice(FEATURES),
        })
        if failed:
            span.set_attribute("error.type", rnd.choice(("429", "timeout", "500")))
            span.set_status(Status(StatusCode.ERROR))
        else:
            span.set_attributes({
                "gen_ai.response.model": profile.response_model,
                "gen_ai.usage.input_tokens": prompt,
                "gen_ai.usage.cache_read.input_tokens": int(prompt * profile.cache_share),
                "gen_ai.usage.output_tokens": completion,
                "gen_ai.usage.reasoning.output_tokens": int(completion * profile.reasoning_share),
                "gen_ai.response.time_to_first_chunk": round(rnd.uniform(0.15, 1.2), 3),
            })
        span.end(end_time=start)
        self.sent += 1

"""Synthetic LLM traffic for the demo: real OTel SDK spans, exported over OTLP/HTTP.

The spans carry the current GenAI semantic-convention attributes an instrumented app would emit
(provider, request and response model, token usage with cached and reasoning parts) plus the
attribution attributes the default config reads: organization (`organization.id`), customer
(`customer.id`), end user (`enduser.id`), feature (`feature.id`), and for chats a conversation of
several turns (`gen_ai.conversation.id`), so the web page's feed, conversations and filters have
live rows. Models are chosen uniformly per conversation, so the mean cost per call is the one
stack.budget sizes the demo budget with. Nothing here calls a paid API.
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
    # unpriced unless overridden
    ModelProfile("self-hosted", "llama-3.1-70b-ft", "llama-3.1-70b-ft", 1200, 250, 0.0, 0.0),
)
FAILURE_SHARE = 0.02  # calls that fail (no usage, no cost)
ORGANIZATIONS: dict[str, tuple[str, ...]] = {  # organization -> its customers
    "acme": ("acme-retail", "acme-bank"), "globex": ("globex-eu", "globex-us"), "umbrella": ("umbrella-labs",),
    "hooli": ("hooli-search",),
}
USERS_PER_CUSTOMER = 3
FEATURES = ("search", "chat", "summarize")
SERVICES = (("support-bot", "prod"), ("search-api", "prod"), ("support-bot", "staging"))
CHAT_TURNS = (2, 6)  # a chat is a conversation of this many turns (inclusive)
OPEN_CONVERSATIONS = 6  # chats under way at once; a call continues one of them or starts a new one


@dataclass
class Conversation:
    """Who talks to which model through which service; `conversation_id` is "" for a one-off call."""

    conversation_id: str
    service: tuple[str, str]
    organization: str
    customer: str
    user: str
    feature: str
    profile: ModelProfile
    turns_left: int


class Traffic:
    """Sends `rate` LLM calls per second as spans to an OTLP/HTTP endpoint, from a daemon thread."""

    def __init__(self, endpoint: str, rate: float = 10.0, seed: int = 7) -> None:
        self.endpoint = endpoint
        self.rate = rate
        self.sent = 0
        self._random = random.Random(seed)
        self._open: list[Conversation] = []
        self._stop = threading.Event()
        self._providers = {
            service: TracerProvider(resource=Resource.create(
                {"service.name": service[0], "deployment.environment.name": service[1], "project.id": "atlas"}),
                shutdown_on_exit=False)  # stop() shuts down within its bound; no unbounded flush at exit
            for service in SERVICES
        }
        for provider in self._providers.values():
            provider.add_span_processor(BatchSpanProcessor(
                OTLPSpanExporter(endpoint=endpoint, timeout=5), schedule_delay_millis=500))
        self._thread = threading.Thread(target=self._run, name="genai-meter-demo-traffic", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 3.0) -> None:
        """Stop making spans, flush what was made, shut the exporters down, all within `timeout_s`:
        the providers flush at once, each on its own thread; past the bound they are left to
        finish on those daemon threads (no retry outlives the exporter's own 5 s timeout)."""
        deadline = time.monotonic() + timeout_s
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=max(0.0, deadline - time.monotonic()))
        flush_ms = max(1, int((deadline - time.monotonic()) * 1000))
        threads = [threading.Thread(target=_flush_and_shut, args=(provider, flush_ms), daemon=True,
                                    name="genai-meter-demo-flush") for provider in self._providers.values()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def _run(self) -> None:
        interval = 1.0 / self.rate
        next_at = time.monotonic()
        while not self._stop.is_set():
            self.emit_one()
            next_at += interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def next_conversation(self) -> Conversation:
        """The conversation the next call belongs to: an open chat's next turn, or a new one."""
        rnd = self._random
        if self._open and (len(self._open) >= OPEN_CONVERSATIONS or rnd.random() < 0.6):
            chat = rnd.choice(self._open)
        else:
            organization = rnd.choice(list(ORGANIZATIONS))
            customer = rnd.choice(ORGANIZATIONS[organization])
            feature = rnd.choice(FEATURES)
            turns = rnd.randint(*CHAT_TURNS) if feature == "chat" else 1
            chat = Conversation(f"demo-{rnd.getrandbits(48):012x}" if turns > 1 else "", rnd.choice(SERVICES),
                                organization, customer, f"{customer}-user-{rnd.randint(1, USERS_PER_CUSTOMER)}",
                                feature, rnd.choice(MODELS), turns)
            if turns > 1:
                self._open.append(chat)
        chat.turns_left -= 1
        if chat.turns_left <= 0 and chat in self._open:
            self._open.remove(chat)
        return chat

    def emit_one(self) -> None:
        """Emit the span of one synthetic call."""
        rnd = self._random
        chat = self.next_conversation()
        profile, service = chat.profile, chat.service
        tracer = self._providers[service].get_tracer("genai-meter.demo")
        prompt = max(1, int(rnd.gauss(profile.prompt_tokens, profile.prompt_tokens / 4)))
        completion = max(1, int(rnd.gauss(profile.completion_tokens, profile.completion_tokens / 4)))
        failed = rnd.random() < FAILURE_SHARE
        start = time.time_ns()
        duration_ns = int(rnd.uniform(0.4, 6.0) * 1e9)
        span = tracer.start_span(f"chat {profile.model}", start_time=start - duration_ns, attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": profile.provider,
            "gen_ai.request.model": profile.model,
            "organization.id": chat.organization,
            "customer.id": chat.customer,
            "enduser.id": chat.user,
            "feature.id": chat.feature,
        })
        if chat.conversation_id:
            span.set_attribute("gen_ai.conversation.id", chat.conversation_id)
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


def _flush_and_shut(provider: TracerProvider, flush_ms: int) -> None:
    try:
        provider.force_flush(timeout_millis=flush_ms)
    finally:
        provider.shutdown()

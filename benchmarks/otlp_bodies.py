"""Prebuilt OTLP trace request bodies for the receiver benchmarks.

A load generator cannot use the SDK exporter (it is slower than the server it should load), so the
bodies are serialized once. Dedup drops a span whose (trace id, span id) was seen before, so every
request must carry fresh ids: each template body holds an 8-byte ASCII *stamp* in every trace id
and in every `gen_ai.response.id`, and `Stamper.next_body` swaps in a new stamp with one C-speed
`bytes.replace` (~0.1 ms for a 512-span body). Fresh response ids also keep the receiver's
attribute cache as busy as real traffic makes it (every call has its own response id).

Times move on as they do in live traffic: a template's spans end in order within a short window
(`BODY_WINDOW_NS`, what 512 spans take at ~100k spans/s), and the Stamper shifts every body's start
and end times (fixed64 fields, patched in place) to a window after the previous body's and not
before the clock. Replaying one set of end times in every body would scatter the ledger's
time-ordered inserts, which live traffic does not do.

`template_body` holds one shape: LLM spans like opentelemetry-instrumentation-openai-v2 chat spans (12
attributes, token counts varying from span to span) under one instrumentation scope (openai-v2's by default,
any other with `scope`), the others like HTTP server spans (8 attributes). `mixed_body` holds the mix real
traffic has, so a speed-up cannot hold for one shape only: several resources and scopes (openai-v2,
OpenLLMetry, OpenInference, an app's own scope, none), several spans per trace (an HTTP root, an agent span
that repeats its children's usage, tool spans, model calls), gen_ai.* spans with current and legacy keys,
OpenLLMetry's own keys, OpenInference's, service tiers in the response and the request, and audio tokens.
"""

from __future__ import annotations

import itertools
import random
import struct
import threading
import time
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from tests.support.otlp import key_values  # one OTLP attribute encoder for tests and benchmarks

SPANS_PER_REQUEST = 512
_FIXED64 = struct.Struct("<Q")
BODY_WINDOW_NS = 5_000_000  # the template's spans end within 5 ms
_START_TAG, _END_TAG = b"\x39", b"\x41"  # Span fields 7 and 8, wire type fixed64
TEMPLATE_STAMP = b"@STAMP@!"  # occurs nowhere else in a template body
_STAMP_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
CUSTOMERS = tuple(f"customer-{i:03d}" for i in range(40))
FEATURES = ("search", "chat", "summarize", "classify", "extract")
MODELS = ("gpt-4o", "gpt-4o-mini")


def llm_attributes(rng: random.Random, response_id: str) -> dict[str, Any]:
    """A semconv openai chat span's attributes (12), with varying token counts."""
    model = rng.choice(MODELS)
    input_tokens = rng.randint(50, 8000)
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": model,
        "gen_ai.response.model": f"{model}-2024-08-06" if model == "gpt-4o" else f"{model}-2024-07-18",
        "gen_ai.response.id": response_id,
        "gen_ai.usage.input_tokens": input_tokens,
        "gen_ai.usage.output_tokens": rng.randint(10, 1500),
        "gen_ai.usage.cache_read.input_tokens": rng.choice((0, 0, input_tokens // 2)),
        "gen_ai.response.finish_reasons": ("stop",),
        "server.address": "api.openai.com",
        "customer.id": rng.choice(CUSTOMERS),
        "feature.id": rng.choice(FEATURES),
    }


def http_attributes(rng: random.Random) -> dict[str, Any]:
    """An HTTP server span's attributes (8)."""
    return {
        "http.request.method": rng.choice(("GET", "GET", "POST")),
        "http.route": "/api/orders/{id}",
        "url.path": f"/api/orders/{rng.randint(1, 10**6)}",
        "url.scheme": "https",
        "http.response.status_code": rng.choice((200, 200, 200, 404)),
        "server.address": "orders.internal",
        "network.protocol.version": "1.1",
        "user_agent.original": "python-requests/2.32",
    }


OPENAI_V2_SCOPE = "opentelemetry.instrumentation.openai_v2"
# The scopes the same gen_ai.* spans are metered under (benchmarks.stages "by scope"): openai-v2's, an app's
# own, OpenLLMetry's and OpenInference's
SCOPES: dict[str, str] = {
    "openai-v2": OPENAI_V2_SCOPE, "app's own": "my-company.llm",
    "OpenLLMetry": "opentelemetry.instrumentation.openai.v1", "OpenInference": "openinference.instrumentation.openai",
}


def template_body(llm_share: float, *, spans: int = SPANS_PER_REQUEST, seed: int = 1,
                  scope: str = OPENAI_V2_SCOPE) -> bytes:
    """One serialized ExportTraceServiceRequest: `spans` spans, `llm_share` of them LLM calls
    (spread evenly), ids and response ids carrying TEMPLATE_STAMP, under instrumentation `scope`."""
    rng = random.Random(seed)
    now = time.time_ns() - BODY_WINDOW_NS
    llm_every = 0 if llm_share <= 0 else max(1, round(1 / llm_share))
    out = []
    for i in range(spans):
        trace_id = TEMPLATE_STAMP + (i // 4 + 1).to_bytes(8, "big")  # 4 spans per trace
        span_id = (i + 1).to_bytes(8, "big")
        is_llm = llm_every and i % llm_every == 0
        end = now + i * BODY_WINDOW_NS // spans
        if is_llm:
            attrs = llm_attributes(rng, "chatcmpl-" + TEMPLATE_STAMP.decode() + f"{i:05d}")
            name, kind = f"chat {attrs['gen_ai.request.model']}", Span.SPAN_KIND_CLIENT
        else:
            attrs, name, kind = http_attributes(rng), "GET /api/orders/{id}", Span.SPAN_KIND_SERVER
        out.append(Span(trace_id=trace_id, span_id=span_id, name=name, kind=kind,
                        start_time_unix_nano=end - rng.randint(10**7, 2 * 10**9), end_time_unix_nano=end,
                        attributes=key_values(attrs)))
    rs = ResourceSpans()
    rs.resource.attributes.extend(key_values({
        "service.name": "checkout", "deployment.environment.name": "prod", "service.version": "1.4.2",
        "telemetry.sdk.name": "opentelemetry", "telemetry.sdk.language": "python"}))
    ss = ScopeSpans()
    ss.scope.name = scope
    ss.spans.extend(out)
    rs.scope_spans.append(ss)
    body = ExportTraceServiceRequest(resource_spans=[rs]).SerializeToString()
    expected = spans + sum(1 for i in range(spans) if llm_every and i % llm_every == 0)
    assert body.count(TEMPLATE_STAMP) == expected, "the stamp must occur only where it was put"
    return body


def llm_span_body(customer: str) -> bytes:
    """A request with one LLM span of `customer`, fresh ids (for the visibility probe)."""
    rng = random.Random()
    attrs = llm_attributes(rng, f"chatcmpl-{rng.getrandbits(64):x}")
    attrs["customer.id"] = customer
    now = time.time_ns()
    span = Span(trace_id=rng.getrandbits(127).to_bytes(16, "big") or b"\x01" * 16,
                span_id=(rng.getrandbits(63) | 1).to_bytes(8, "big"), name="chat gpt-4o",
                kind=Span.SPAN_KIND_CLIENT, start_time_unix_nano=now - 10**9, end_time_unix_nano=now,
                attributes=key_values(attrs))
    rs = ResourceSpans()
    rs.resource.attributes.extend(key_values({"service.name": "checkout", "deployment.environment.name": "prod"}))
    ss = ScopeSpans()
    ss.scope.name = "opentelemetry.instrumentation.openai_v2"
    ss.spans.append(span)
    rs.scope_spans.append(ss)
    return ExportTraceServiceRequest(resource_spans=[rs]).SerializeToString()


def time_fields(body: bytes) -> tuple[list[tuple[int, int]], int, int]:
    """Where the spans' start and end times sit in `body` ((offset, value) of each fixed64), and the
    first and last end time."""
    fields: list[tuple[int, int]] = []
    ends = []
    for rs in ExportTraceServiceRequest.FromString(body).resource_spans:
        for ss in rs.scope_spans:
            for span in ss.spans:
                ends.append(span.end_time_unix_nano)
                for tag, value in ((_START_TAG, span.start_time_unix_nano), (_END_TAG, span.end_time_unix_nano)):
                    encoded = tag + _FIXED64.pack(value)
                    at = body.find(encoded)
                    assert at >= 0 and body.find(encoded, at + 1) < 0, "a span time must occur once in the body"
                    fields.append((at + 1, value))
    return fields, min(ends), max(ends)


def stamp(n: int) -> bytes:
    """The n-th stamp: 8 ASCII characters, distinct for every n < 62**8."""
    chars = bytearray(8)
    for pos in range(8):
        n, digit = divmod(n, len(_STAMP_ALPHABET))
        chars[pos] = _STAMP_ALPHABET[digit]
    return bytes(chars)


class Stamper:
    """Fresh copies of a template body: thread-safe, each call a new stamp (so new span ids) and
    times shifted past the previous body's (the template's window after the last, not before now)."""

    def __init__(self, template: bytes, *, first: int | None = None) -> None:
        self.template = template
        # start somewhere random so two runs against one server do not collide either
        self._counter = itertools.count(first if first is not None else random.randrange(62**7))
        self._lock = threading.Lock()
        self._times, first_end, last_end = time_fields(template)
        self._window = last_end - first_end + 1
        self._shift = 0
        self._base = first_end

    def next_body(self) -> bytes:
        with self._lock:
            n = next(self._counter)
            self._shift = max(self._shift + self._window, time.time_ns() - self._base)
            shift = self._shift
        body = bytearray(self.template.replace(TEMPLATE_STAMP, stamp(n)))
        for offset, value in self._times:
            _FIXED64.pack_into(body, offset, value + shift)
        return bytes(body)

    def bodies(self, count: int) -> list[bytes]:
        return [self.next_body() for _ in range(count)]

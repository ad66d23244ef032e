"""The mixed OTLP body of the receiver benchmarks: the traffic of several apps and instrumentations at once.

512 spans in traces of four: an HTTP server root, an agent span that repeats its children's usage (skipped
as an aggregate), and two model calls, or a model call and a tool span. The model calls come from five
sources, each under its own resource (service) and scope:

- openai-v2 (`opentelemetry.instrumentation.openai_v2`): current semconv keys, cached tokens, and a
  response service tier on a share of them (default, flex, priority);
- an app's own scope (`my-company.llm`, manual instrumentation): current semconv keys, legacy
  `gen_ai.system`;
- OpenLLMetry (`opentelemetry.instrumentation.openai.v1`): `gen_ai.is_streaming`, total tokens, reasoning
  tokens, the request and response tiers;
- OpenInference (`openinference.instrumentation.openai`): span kind LLM, `llm.token_count.*`, invocation
  parameters with the tier asked for, audio tokens for gpt-audio;
- an older gen_ai.* instrumentation with no scope name: `gen_ai.usage.prompt_tokens` /
  `completion_tokens`.

Every trace id and every response id carries the stamp (`otlp_bodies.Stamper`).
"""

from __future__ import annotations

import json
import random
import time
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from benchmarks.otlp_bodies import (
    BODY_WINDOW_NS,
    CUSTOMERS,
    FEATURES,
    SPANS_PER_REQUEST,
    TEMPLATE_STAMP,
    http_attributes,
)
from tests.support.otlp import key_values

SOURCES = ("openai-v2", "app", "openllmetry", "openinference", "legacy")
SCOPE_OF = {"openai-v2": "opentelemetry.instrumentation.openai_v2", "app": "my-company.llm",
            "openllmetry": "opentelemetry.instrumentation.openai.v1",
            "openinference": "openinference.instrumentation.openai", "legacy": ""}
TIERS = ("default", "default", "flex", "priority")


def _stamped(rng: random.Random, prefix: str, i: int) -> str:
    return f"{prefix}-{TEMPLATE_STAMP.decode()}{i:05d}"


def model_call(source: str, rng: random.Random, i: int) -> tuple[dict[str, Any], str, bool]:
    """(attributes, span name, whether a response id carries the stamp) of one model call of `source`."""
    customer, feature = rng.choice(CUSTOMERS), rng.choice(FEATURES)
    inp, out = rng.randint(50, 8000), rng.randint(10, 1500)
    if source == "openinference":
        model = rng.choice(("gpt-4o-2024-08-06", "gpt-audio"))
        params: dict[str, Any] = {"model": model}
        attrs: dict[str, Any] = {"openinference.span.kind": "LLM", "llm.system": "openai", "llm.model_name": model,
                                 "llm.token_count.prompt": inp, "llm.token_count.completion": out,
                                 "llm.token_count.total": inp + out}
        if model == "gpt-audio":
            attrs["llm.token_count.prompt_details.audio"] = inp // 2
            attrs["llm.token_count.completion_details.audio"] = out // 2
        elif rng.random() < 0.25:
            params["service_tier"] = "priority"
        attrs["llm.invocation_parameters"] = json.dumps(params)
        attrs.update({"customer.id": customer, "feature.id": feature})
        return attrs, "ChatCompletion", False
    model = rng.choice(("gpt-4o", "gpt-4o-mini"))
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.request.model": model, "gen_ai.response.model": model,
             "gen_ai.response.id": _stamped(rng, "chatcmpl", i)}
    if source == "legacy":
        attrs.update({"gen_ai.system": "openai", "gen_ai.usage.prompt_tokens": inp,
                      "gen_ai.usage.completion_tokens": out})
    else:
        attrs.update({"gen_ai.provider.name": "openai", "gen_ai.usage.input_tokens": inp,
                      "gen_ai.usage.output_tokens": out})
    if source == "openai-v2":
        attrs["gen_ai.usage.cache_read.input_tokens"] = rng.choice((0, inp // 2))
        tier = rng.choice(TIERS)
        if tier != "default":
            attrs["gen_ai.openai.response.service_tier"] = tier
            attrs["gen_ai.request.model"] = attrs["gen_ai.response.model"] = "gpt-5-mini"
    elif source == "app":
        attrs["gen_ai.system"] = "openai"
    elif source == "openllmetry":
        reasoning = rng.randint(0, out)
        attrs.update({"gen_ai.is_streaming": False, "gen_ai.usage.total_tokens": inp + out,
                      "gen_ai.usage.reasoning_tokens": reasoning, "openai.request.service_tier": "auto",
                      "openai.response.service_tier": "default"})
    attrs.update({"customer.id": customer, "feature.id": feature})
    return attrs, f"chat {model}" if source != "openllmetry" else "openai.chat", True


def mixed_body(*, spans: int = SPANS_PER_REQUEST, seed: int = 1) -> bytes:
    """One serialized ExportTraceServiceRequest of mixed traffic (module docstring), stamped."""
    rng = random.Random(seed)
    now = time.time_ns() - BODY_WINDOW_NS
    by_source: dict[str, list[Span]] = {source: [] for source in SOURCES}
    stamped = 0
    for i in range(spans):
        trace = i // 4
        source = SOURCES[trace % len(SOURCES)]
        trace_id = TEMPLATE_STAMP + (trace + 1).to_bytes(8, "big")
        span_id = (i + 1).to_bytes(8, "big")
        parent = b"" if i % 4 == 0 else (trace * 4 + 1).to_bytes(8, "big") if i % 4 == 1 else \
            (trace * 4 + 2).to_bytes(8, "big")
        end = now + i * BODY_WINDOW_NS // spans
        position = i % 4
        if position == 0:
            attrs, name, kind = http_attributes(rng), "POST /api/answer", Span.SPAN_KIND_SERVER
        elif position == 1:
            attrs, name, kind = ({"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "support",
                                  "gen_ai.usage.input_tokens": 1, "gen_ai.usage.output_tokens": 1},
                                 "invoke_agent support", Span.SPAN_KIND_INTERNAL)
        elif position == 3 and trace % 3 == 0:
            attrs, name, kind = ({"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"},
                                 "execute_tool search", Span.SPAN_KIND_INTERNAL)
        else:
            attrs, name, with_id = model_call(source, rng, i)
            stamped += with_id
            kind = Span.SPAN_KIND_CLIENT
        by_source[source].append(Span(
            trace_id=trace_id, span_id=span_id, parent_span_id=parent, name=name, kind=kind,
            start_time_unix_nano=end - rng.randint(10**7, 2 * 10**9), end_time_unix_nano=end,
            attributes=key_values(attrs)))
    request = ExportTraceServiceRequest()
    for source, source_spans in by_source.items():
        rs = ResourceSpans()
        rs.resource.attributes.extend(key_values({
            "service.name": f"svc-{source}", "deployment.environment.name": "prod",
            "telemetry.sdk.name": "opentelemetry", "telemetry.sdk.language": "python"}))
        ss = ScopeSpans()
        ss.scope.name = SCOPE_OF[source]
        ss.spans.extend(source_spans)
        rs.scope_spans.append(ss)
        request.resource_spans.append(rs)
    body = request.SerializeToString()
    assert body.count(TEMPLATE_STAMP) == spans + stamped, "the stamp must occur only where it was put"
    return body

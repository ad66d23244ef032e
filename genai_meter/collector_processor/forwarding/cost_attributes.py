"""What a forwarded span carries: cost attributes added, message content stripped.

Two rewrites of OTLP protobuf spans, used by `forwarding.Forwarder` on its sender thread:

- `annotate_span` adds the cost of a counted LLM call (`genai_meter.cost.*`, and the
  `gen_ai.usage.cost` that Langfuse and OpenLIT read, only where the span has none yet).
- `strip_content` removes prompt, completion, tool-argument and retrieved-document attributes and
  the span events that carry messages, from every span (docs/topologies.md lists the keys).

Both mutate the span in place and assume no other thread touches it. Money is exact `Decimal` up
to here; attribute values are doubles (OTLP has no decimal type), `float(Decimal)`: the nearest
double, the same rounding as the /metrics exposition.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from google.protobuf.internal.containers import RepeatedCompositeFieldContainer
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from genai_meter.contract import COST_TYPES
from genai_meter.records import Cost, LLMCall

# --- cost attributes ------------------------------------------------------------------------------

COST_PREFIX = "genai_meter.cost."  # every key under it is written (and overwritten) by genai-meter
COST_TOTAL = "genai_meter.cost.total_usd"  # double, USD
COST_BY_TYPE: dict[str, str] = {t: f"genai_meter.cost.{t}_usd" for t in COST_TYPES}  # double, USD per class
COST_PRICE_SOURCE = "genai_meter.cost.price_source"  # "genai-prices" or "overrides"
COST_PRICE_ENTRY = "genai_meter.cost.price_entry"  # the price entry used, provider/model[@from]
COST_PRICE_VERSION = "genai_meter.cost.price_version"  # catalog version or the override's date
COST_UNPRICED = "genai_meter.cost.unpriced"  # bool true: no price matched, no cost numbers
COST_UNMETERED = "genai_meter.cost.unmetered"  # "no_usage" or "cache_unknown" (cost is an upper bound)
GEN_AI_USAGE_COST = "gen_ai.usage.cost"  # double, USD; set only where the span has none

AttrValue = float | str | bool


def cost_attributes(call: LLMCall, cost: Cost | None) -> dict[str, AttrValue]:
    """The `genai_meter.cost.*` attributes of one counted call (without `gen_ai.usage.cost`)."""
    attrs: dict[str, AttrValue] = {}
    if cost is None:
        attrs[COST_UNPRICED] = True
    else:
        attrs[COST_TOTAL] = float(cost.total)
        for cost_type, key in COST_BY_TYPE.items():
            attrs[key] = float(cost.by_type.get(cost_type, Decimal(0)))
        attrs[COST_PRICE_SOURCE] = cost.price_source
        attrs[COST_PRICE_ENTRY] = cost.price_entry
        attrs[COST_PRICE_VERSION] = cost.price_version
    if call.unmetered:
        attrs[COST_UNMETERED] = call.unmetered
    return attrs


def annotate_span(span: Span, call: LLMCall, cost: Cost | None) -> None:
    """Add the call's cost attributes to `span` (an OTLP protobuf span), in place.

    Existing `genai_meter.cost.*` attributes (from an upstream genai-meter) are replaced, so a span
    never carries two values for one key. `gen_ai.usage.cost` is added only when the span has none
    and the call is priced: a cost that the instrumentation computed itself is left alone.
    """
    attributes = span.attributes
    has_usage_cost = False
    stale = []
    for index, kv in enumerate(attributes):
        key = kv.key
        if key.startswith(COST_PREFIX):
            stale.append(index)
        elif key == GEN_AI_USAGE_COST:
            has_usage_cost = True
    for index in reversed(stale):
        del attributes[index]
    values = cost_attributes(call, cost)
    if cost is not None and not has_usage_cost:
        values[GEN_AI_USAGE_COST] = values[COST_TOTAL]
    _append(attributes, values.items())


def _append(attributes: RepeatedCompositeFieldContainer[KeyValue], items: Iterable[tuple[str, AttrValue]]) -> None:
    for key, value in items:
        kv: KeyValue = attributes.add()
        kv.key = key
        if isinstance(value, bool):  # before float: bool is not a double
            kv.value.bool_value = value
        elif isinstance(value, float):
            kv.value.double_value = value
        else:
            kv.value.string_value = value


# --- content stripping ----------------------------------------------------------------------------
#
# Keys whose value is message content (prompts, completions, system instructions, tool arguments and
# results, retrieved documents), per instrumentation. A "family" key is content together with every
# dotted sub-key (`llm.input_messages.0.message.content`); an exact key is content alone.

# OTel GenAI semantic conventions (current, and the pre-1.28 attribute form).
SEMCONV_CONTENT_KEYS = frozenset({
    "gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions",
    "gen_ai.tool.call.arguments", "gen_ai.tool.call.result",
})
SEMCONV_CONTENT_FAMILIES = ("gen_ai.prompt", "gen_ai.completion")  # also OpenLLMetry, LangSmith
# OpenLLMetry (traceloop): indexed prompt/completion keys are in the families above.
OPENLLMETRY_CONTENT_KEYS = frozenset({"traceloop.entity.input", "traceloop.entity.output"})
OPENLLMETRY_CONTENT_FAMILIES = ("llm.prompts", "llm.completions")  # pre-gen_ai releases
# OpenLIT: gen_ai.content.prompt / .completion / .reasoning as span attributes.
OPENLIT_CONTENT_FAMILIES = ("gen_ai.content",)
# OpenInference (Arize Phoenix).
OPENINFERENCE_CONTENT_KEYS = frozenset({"input.value", "output.value", "llm.prompt_template.variables"})
OPENINFERENCE_CONTENT_FAMILIES = ("llm.input_messages", "llm.output_messages", "retrieval.documents",
                                  "embedding.embeddings")  # llm.prompts is above
# Vercel AI SDK.
VERCEL_CONTENT_KEYS = frozenset({
    "ai.response.text", "ai.response.object", "ai.response.toolCalls", "ai.response.reasoning",
    "ai.toolCall.args", "ai.toolCall.result", "ai.value", "ai.values", "ai.embedding", "ai.embeddings",
})
VERCEL_CONTENT_FAMILIES = ("ai.prompt",)  # ai.prompt, ai.prompt.messages, ai.prompt.tools, ...
# pydantic-ai / Logfire (agent run spans) and Google ADK.
FRAMEWORK_CONTENT_KEYS = frozenset({
    "pydantic_ai.all_messages", "all_messages_events", "final_result",
    "gcp.vertex.agent.llm_request", "gcp.vertex.agent.llm_response",
    "gcp.vertex.agent.tool_call_args", "gcp.vertex.agent.tool_response",
})
# Keys inside a content family that are metadata, not content.
CONTENT_KEEP_KEYS = frozenset({"gen_ai.prompt.name"})  # semconv: the prompt template's name

_FAMILIES = (SEMCONV_CONTENT_FAMILIES + OPENLLMETRY_CONTENT_FAMILIES + OPENLIT_CONTENT_FAMILIES
             + OPENINFERENCE_CONTENT_FAMILIES + VERCEL_CONTENT_FAMILIES)
CONTENT_KEYS = (SEMCONV_CONTENT_KEYS | OPENLLMETRY_CONTENT_KEYS | OPENINFERENCE_CONTENT_KEYS
                | VERCEL_CONTENT_KEYS | FRAMEWORK_CONTENT_KEYS | frozenset(_FAMILIES))
CONTENT_PREFIXES: tuple[str, ...] = tuple(f"{family}." for family in _FAMILIES)

# Span events that carry messages: dropped whole. Other events keep their non-content attributes
# (e.g. semconv's gen_ai.client.inference.operation.details loses only its message attributes).
CONTENT_EVENT_NAMES = frozenset({
    "gen_ai.content.prompt", "gen_ai.content.completion",  # older semconv, OpenLIT, OpenLLMetry
    "gen_ai.choice",  # semconv 1.28-1.36 events
})
CONTENT_EVENT_PREFIX, CONTENT_EVENT_SUFFIX = "gen_ai.", ".message"  # gen_ai.{system,user,assistant,tool}.message


def is_content_key(key: str) -> bool:
    """Whether an attribute key holds message content (see the constants above)."""
    if key in CONTENT_KEYS:
        return True
    return key.startswith(CONTENT_PREFIXES) and key not in CONTENT_KEEP_KEYS


def is_content_event(name: str) -> bool:
    """Whether a span event, by name, exists to carry message content."""
    return name in CONTENT_EVENT_NAMES or (
        name.startswith(CONTENT_EVENT_PREFIX) and name.endswith(CONTENT_EVENT_SUFFIX))


def strip_content(span: Span) -> int:
    """Remove content attributes and content events from `span` in place; returns how many.

    The span's `dropped_attributes_count` / `dropped_events_count` (and an event's
    `dropped_attributes_count`) grow by what was removed, as OTLP asks of anything that discards
    attributes, so a reader of the trace can tell that something was there.
    """
    removed = _strip_attributes(span.attributes)
    if removed:
        span.dropped_attributes_count += removed
    events = span.events
    if not events:
        return removed
    dropped_events = [i for i, event in enumerate(events) if is_content_event(event.name)]
    for index in reversed(dropped_events):
        del events[index]
    if dropped_events:
        span.dropped_events_count += len(dropped_events)
    removed += len(dropped_events)
    for event in events:
        event_removed = _strip_attributes(event.attributes)
        if event_removed:
            event.dropped_attributes_count += event_removed
            removed += event_removed
    return removed


def _strip_attributes(attributes: RepeatedCompositeFieldContainer[KeyValue]) -> int:
    # is_content_key, inlined: this runs for every attribute of every forwarded span.
    keys, prefixes, keep = CONTENT_KEYS, CONTENT_PREFIXES, CONTENT_KEEP_KEYS
    doomed = [i for i, kv in enumerate(attributes)
              if (key := kv.key) in keys or (key.startswith(prefixes) and key not in keep)]
    if not doomed:
        return 0
    for index in reversed(doomed):
        del attributes[index]
    return len(doomed)


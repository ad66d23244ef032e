"""The gen_ai.* reader: OTel GenAI semconv (old and new) and every source that speaks it (OTel
contrib, OpenLLMetry, OpenLIT, pydantic-ai, ADK, botocore); each source adds its hooks here."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from genai_meter import contract
from genai_meter.conventions import adk, bedrock, openlit, openllmetry, pydantic_ai
from genai_meter.conventions.keys import (
    ALTERNATE_TOKEN_KEYS,
    CACHE_READ_KEYS,
    CACHE_WRITE_KEYS,
    GEN_AI_OPERATION_NAME,
    GEN_AI_PROVIDER_NAME,
    GEN_AI_REQUEST_MODEL,
    GEN_AI_RESPONSE_MODEL,
    GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK,
    GEN_AI_SYSTEM,
    GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
    GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
    GEN_AI_USAGE_INPUT_TOKENS,
    GEN_AI_USAGE_OUTPUT_TOKENS,
    GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
    INPUT_KEYS,
    OUTPUT_KEYS,
    REASONING_KEYS,
    TOTAL_KEYS,
)
from genai_meter.conventions.reading import Reading, has_usage
from genai_meter.conventions.tables import (
    AGGREGATE_OPERATIONS,
    CACHE_LIMIT,
    NON_INFERENCE_OPERATIONS,
    OPERATION_ALIASES,
    OPERATION_OUTCOMES,
    SKIPS,
    SOURCE_ADK,
    SOURCE_BOTOCORE,
    SOURCE_OPENLIT,
    SOURCE_OPENLLMETRY,
    SOURCE_OTEL_CONTRIB,
    SOURCE_PYDANTIC_AI,
    SOURCE_SEMCONV,
    normalize_operation,
    normalize_provider,
)
from genai_meter.conventions.values import count, count_value, seconds
from genai_meter.records import SpanRecord

# Per-source hooks of the shared gen_ai.* reader.
DetailsHook = Callable[[Mapping[str, Any], Reading, object], None]
FallbackHook = Callable[[SpanRecord, Mapping[str, Any]], "str | None"]


def first_word_operation(span: SpanRecord, a: Mapping[str, Any]) -> str | None:
    """Pre-1.27 semconv spans name the operation only in the span name: "chat gpt-4"; OpenLLMetry's spans
    without its own keys name it after the vendor: "anthropic.chat"."""
    first_word = span.name.partition(" ")[0]
    if first_word in OPERATION_ALIASES:
        return first_word
    return openllmetry.fallback_operation(span, a)


DETAILS: dict[str, DetailsHook] = {
    SOURCE_PYDANTIC_AI: pydantic_ai.details,
    SOURCE_ADK: adk.details,
    SOURCE_OPENLIT: openlit.details,
    SOURCE_OTEL_CONTRIB: bedrock.cache_blind_details,
    SOURCE_BOTOCORE: bedrock.cache_blind_details,
}
FALLBACK_OPERATION: dict[str, FallbackHook] = {
    SOURCE_OPENLLMETRY: openllmetry.fallback_operation,
    SOURCE_SEMCONV: first_word_operation,
    SOURCE_OTEL_CONTRIB: first_word_operation,
    SOURCE_BOTOCORE: first_word_operation,
    SOURCE_PYDANTIC_AI: pydantic_ai.fallback_operation,
    SOURCE_ADK: adk.fallback_operation,
}


def read_gen_ai(span: SpanRecord, a: Mapping[str, Any], source: str) -> Reading | str:
    """Spans that use gen_ai.* keys: semconv, OTel contrib, botocore, OpenLLMetry, OpenLIT, pydantic-ai, ADK."""
    if pydantic_ai.is_run_totals(a):
        return contract.SKIP_AGGREGATE
    operation = gen_ai_operation(span, a, source)
    if operation in SKIPS:
        return operation
    reading = Reading(source, operation)
    provider_raw = read_usage_and_model(a, reading)
    if operation == "" and not has_usage(reading) and not (reading.provider and reading.model):
        return contract.SKIP_NON_INFERENCE
    if operation == "":
        reading.operation = contract.UNKNOWN
    hook = DETAILS.get(source)
    if hook is not None:
        hook(a, reading, provider_raw)
    if reading.ttft_s is None:
        ttft = a.get(GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK)
        if ttft is not None:
            reading.ttft_s = seconds(ttft)
    return reading


def read_usage_and_model(a: Mapping[str, Any], reading: Reading) -> object:
    """Token counts, provider and model of a gen_ai.* span into `reading`; returns the raw provider
    value (the per-source hooks look at it)."""
    read_gen_ai_tokens(a, reading)
    provider_raw = a.get(GEN_AI_PROVIDER_NAME) or a.get(GEN_AI_SYSTEM)
    reading.provider = normalize_provider(provider_raw)
    reading.model = a.get(GEN_AI_RESPONSE_MODEL) or a.get(GEN_AI_REQUEST_MODEL)
    return provider_raw


def gen_ai_operation(span: SpanRecord, a: Mapping[str, Any], source: str) -> str:
    """The canonical operation, a skip reason, or "" when the span names none."""
    if source == SOURCE_OPENLLMETRY:
        outcome = openllmetry.kind_outcome(a)
        if outcome is not None:
            return outcome
    raw = a.get(GEN_AI_OPERATION_NAME)
    if not isinstance(raw, str) or not raw:
        fallback = FALLBACK_OPERATION.get(source)
        raw = fallback(span, a) if fallback is not None else None
        if raw is None:
            return ""
    outcome = OPERATION_OUTCOMES.get(raw)
    if outcome is None:
        operation = normalize_operation(raw)
        outcome = (contract.SKIP_AGGREGATE if operation in AGGREGATE_OPERATIONS
                   else contract.SKIP_NON_INFERENCE if operation in NON_INFERENCE_OPERATIONS else operation)
        if len(OPERATION_OUTCOMES) < CACHE_LIMIT:
            OPERATION_OUTCOMES[raw] = outcome
    return outcome


def read_gen_ai_tokens(a: Mapping[str, Any], reading: Reading) -> None:
    get = a.get
    if ALTERNATE_TOKEN_KEYS.isdisjoint(a):
        # Only the current semconv keys, if any (nearly every span): each class is its one key,
        # read directly (one C-level scan of the keys instead of ~15 lookups of absent keys).
        # (an absent key or a non-negative int is taken as it is; anything else goes through count_value)
        value = get(GEN_AI_USAGE_INPUT_TOKENS)
        reading.inp = value if value is None or (type(value) is int and value >= 0) else count_value(value)
        value = get(GEN_AI_USAGE_OUTPUT_TOKENS)
        reading.out = value if value is None or (type(value) is int and value >= 0) else count_value(value)
        value = get(GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS)
        reading.cache_read = value if value is None or (type(value) is int and value >= 0) else count_value(value)
        value = get(GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS)
        reading.cache_write = value if value is None or (type(value) is int and value >= 0) else count_value(value)
        value = get(GEN_AI_USAGE_REASONING_OUTPUT_TOKENS)
        reading.reasoning = value if value is None or (type(value) is int and value >= 0) else count_value(value)
        return  # reading.total stays None: both total keys are alternates
    reading.inp = count(get, INPUT_KEYS)
    reading.out = count(get, OUTPUT_KEYS)
    reading.total = count(get, TOTAL_KEYS)
    reading.cache_read = count(get, CACHE_READ_KEYS)
    reading.cache_write = count(get, CACHE_WRITE_KEYS)
    reading.reasoning = count(get, REASONING_KEYS)

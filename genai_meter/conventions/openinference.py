"""OpenInference (Arize): the span kind decides; prompt includes cache, completion includes reasoning."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from genai_meter import contract
from genai_meter.conventions.keys import (
    EMBEDDING_MODEL_NAME,
    LLM_INVOCATION_PARAMETERS,
    LLM_MODEL_NAME,
    LLM_PROVIDER,
    LLM_REQUEST_MODEL_NAME,
    LLM_RESPONSE_MODEL_NAME,
    LLM_SYSTEM,
    LLM_TOKEN_COUNT_COMPLETION,
    LLM_TOKEN_COUNT_COMPLETION_REASONING,
    LLM_TOKEN_COUNT_PROMPT,
    LLM_TOKEN_COUNT_PROMPT_CACHE_READ,
    LLM_TOKEN_COUNT_PROMPT_CACHE_WRITE,
    LLM_TOKEN_COUNT_TOTAL,
    OPENINFERENCE_SPAN_KIND,
)
from genai_meter.conventions.reading import Reading
from genai_meter.conventions.tables import (
    OPENINFERENCE_KINDS,
    SKIPS,
    SOURCE_OPENINFERENCE,
    normalize_provider,
)
from genai_meter.conventions.values import count_value, invocation_model
from genai_meter.records import SpanRecord


def read_openinference(span: SpanRecord, a: Mapping[str, Any], source: str) -> Reading | str:
    """OpenInference: the span kind decides; prompt includes cache, completion includes reasoning."""
    kind = a.get(OPENINFERENCE_SPAN_KIND)
    operation = OPENINFERENCE_KINDS.get(kind.upper(), contract.SKIP_NON_INFERENCE) \
        if isinstance(kind, str) else contract.SKIP_NON_INFERENCE
    if operation in SKIPS:
        return operation
    reading = Reading(SOURCE_OPENINFERENCE, operation)
    reading.inp = count_value(a.get(LLM_TOKEN_COUNT_PROMPT))
    reading.out = count_value(a.get(LLM_TOKEN_COUNT_COMPLETION))
    reading.total = count_value(a.get(LLM_TOKEN_COUNT_TOTAL))
    reading.cache_read = count_value(a.get(LLM_TOKEN_COUNT_PROMPT_CACHE_READ))
    reading.cache_write = count_value(a.get(LLM_TOKEN_COUNT_PROMPT_CACHE_WRITE))
    reading.reasoning = count_value(a.get(LLM_TOKEN_COUNT_COMPLETION_REASONING))
    provider = normalize_provider(a.get(LLM_PROVIDER))
    system = normalize_provider(a.get(LLM_SYSTEM))
    if not provider or (provider == "gcp.gemini" and system == "gcp.vertex_ai"):
        provider = system  # llm.provider "google" is ambiguous; llm.system "vertexai" tells
    reading.provider = provider
    model = (a.get(LLM_MODEL_NAME) or a.get(EMBEDDING_MODEL_NAME) or a.get(LLM_RESPONSE_MODEL_NAME)
             or a.get(LLM_REQUEST_MODEL_NAME))
    reading.model = model if model else invocation_model(a.get(LLM_INVOCATION_PARAMETERS))
    return reading

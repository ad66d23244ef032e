"""Google ADK: the provider hides behind the framework name; older ADK keeps thinking out of output."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from genai_meter.conventions.keys import (
    ADK_FRAMEWORK_SYSTEM,
    ADK_REASONING_TOKENS,
    GEN_AI_REQUEST_MODEL,
)
from genai_meter.conventions.reading import Reading
from genai_meter.conventions.values import count_value
from genai_meter.records import SpanRecord


def details(a: Mapping[str, Any], reading: Reading, provider_raw: object) -> None:
    """Google ADK: the provider hides behind the framework name; older ADK keeps thinking out of output."""
    if provider_raw == ADK_FRAMEWORK_SYSTEM or not reading.provider:
        reading.provider = provider_of(reading.model)
    if reading.reasoning is None:
        thinking = count_value(a.get(ADK_REASONING_TOKENS))
        if thinking is not None:
            reading.reasoning = thinking
            reading.reasoning_in_output = False
    reading.cache_unknown = reading.cache_read is None and reading.cache_write is None


def provider_of(model: object) -> str:
    if not isinstance(model, str):
        return ""
    name = model.lower().rsplit("/", 1)[-1]
    if name.startswith(("gemini", "gemma")):
        return "gcp.gemini"
    if name.startswith("claude"):
        return "gcp.vertex_ai"  # ADK's Claude runs on Vertex AI
    return ""  # LiteLLM "provider/model" ids are split later


def fallback_operation(span: SpanRecord, a: Mapping[str, Any]) -> str | None:
    """ADK's model-call span names no operation."""
    if span.name == "call_llm" or GEN_AI_REQUEST_MODEL in a:
        return "generate_content"
    return None

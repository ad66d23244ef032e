"""OpenLLMetry (traceloop): workflow/task/agent spans repeat their children; the request type or the
span name ("openai.chat") names the operation when gen_ai.operation.name is absent."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from genai_meter.conventions.keys import LLM_REQUEST_TYPE, TRACELOOP_SPAN_KIND
from genai_meter.conventions.tables import (
    OPENLLMETRY_REQUEST_TYPES,
    OPERATION_ALIASES,
    TRACELOOP_KINDS,
)
from genai_meter.records import SpanRecord


def kind_outcome(a: Mapping[str, Any]) -> str | None:
    """The skip reason a traceloop span kind implies (workflow, task, agent, tool), else None."""
    kind = a.get(TRACELOOP_SPAN_KIND)
    if isinstance(kind, str):
        return TRACELOOP_KINDS.get(kind.lower())
    return None


def fallback_operation(span: SpanRecord, a: Mapping[str, Any]) -> str | None:
    """The operation from llm.request.type, else from the span name's suffix."""
    request_type = a.get(LLM_REQUEST_TYPE)
    if isinstance(request_type, str) and request_type.lower() in OPENLLMETRY_REQUEST_TYPES:
        return OPENLLMETRY_REQUEST_TYPES[request_type.lower()]
    _, dot, suffix = span.name.partition(".")  # "openai.chat", "anthropic.completion", ...
    if dot and suffix in OPERATION_ALIASES:
        return suffix
    return None

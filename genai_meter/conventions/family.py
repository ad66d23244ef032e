"""Which instrumentation family produced a span: by its marker keys, then its instrumentation scope."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from genai_meter.conventions.keys import (
    ADK_FRAMEWORK_SYSTEM,
    AI_OPERATION_ID,
    GEN_AI_AGGREGATED_USAGE_INPUT_TOKENS,
    GEN_AI_AGGREGATED_USAGE_OUTPUT_TOKENS,
    GEN_AI_IS_STREAMING,
    GEN_AI_SYSTEM,
    LANGSMITH_SPAN_KIND,
    LLM_IS_STREAMING,
    LLM_REQUEST_TYPE,
    LLM_USAGE_TOTAL_TOKENS,
    OPENINFERENCE_SPAN_KIND,
    TELEMETRY_SDK_NAME,
    TRACELOOP_SPAN_KIND,
)
from genai_meter.conventions.tables import (
    CACHE_LIMIT,
    FAMILY_BY_SCOPE,
    SOURCE_ADK,
    SOURCE_BOTOCORE,
    SOURCE_LANGSMITH,
    SOURCE_OPENINFERENCE,
    SOURCE_OPENLIT,
    SOURCE_OPENLLMETRY,
    SOURCE_OTEL_CONTRIB,
    SOURCE_PYDANTIC_AI,
    SOURCE_SEMCONV,
    SOURCE_VERCEL,
)
from genai_meter.records import SpanRecord


def family_of(span: SpanRecord, a: Mapping[str, Any]) -> str:
    """The instrumentation family that produced `span`."""
    if AI_OPERATION_ID in a:
        return SOURCE_VERCEL
    if OPENINFERENCE_SPAN_KIND in a:
        return SOURCE_OPENINFERENCE
    if LANGSMITH_SPAN_KIND in a:
        return SOURCE_LANGSMITH
    scope = span.scope_name
    if scope:
        family = FAMILY_BY_SCOPE.get(scope, "")
        if family == "":
            family = family_of_scope(scope)
            if len(FAMILY_BY_SCOPE) < CACHE_LIMIT:
                FAMILY_BY_SCOPE[scope] = family
        if family is not None and (family != SOURCE_OPENLLMETRY or " " not in span.name):
            return family  # (contrib instrumentations share the scope prefix but name spans "chat gpt-4o")
    if a.get(GEN_AI_SYSTEM) == ADK_FRAMEWORK_SYSTEM:
        return SOURCE_ADK
    if (LLM_REQUEST_TYPE in a or TRACELOOP_SPAN_KIND in a or GEN_AI_IS_STREAMING in a
            or LLM_IS_STREAMING in a or LLM_USAGE_TOTAL_TOKENS in a):
        return SOURCE_OPENLLMETRY
    if GEN_AI_AGGREGATED_USAGE_INPUT_TOKENS in a or GEN_AI_AGGREGATED_USAGE_OUTPUT_TOKENS in a:
        return SOURCE_PYDANTIC_AI
    if a.get(TELEMETRY_SDK_NAME) == "openlit" or span.resource.get(TELEMETRY_SDK_NAME) == "openlit":
        return SOURCE_OPENLIT
    return SOURCE_SEMCONV


def family_of_scope(scope: str) -> str | None:
    """The family an instrumentation scope name belongs to; None when the scope does not tell."""
    if scope.startswith(("opentelemetry.instrumentation.openai_v2", "opentelemetry.util.genai")):
        return SOURCE_OTEL_CONTRIB
    if scope.startswith("opentelemetry.instrumentation.botocore"):
        return SOURCE_BOTOCORE
    if scope.startswith("openlit"):
        return SOURCE_OPENLIT
    if scope.startswith(("pydantic-ai", "pydantic_ai")):
        return SOURCE_PYDANTIC_AI
    if scope == ADK_FRAMEWORK_SYSTEM:
        return SOURCE_ADK
    if scope == "langsmith":
        return SOURCE_LANGSMITH
    if scope.startswith("openinference."):
        return SOURCE_OPENINFERENCE
    if scope.startswith("opentelemetry.instrumentation."):  # OpenLLMetry packages (and contrib look-alikes)
        return SOURCE_OPENLLMETRY
    return None

"""Which instrumentation family produced a span: by what its attributes say, the instrumentation scope only as
a hint among the families that share the gen_ai.* keys.

The family-defining keys decide first (`ai.operationId`: Vercel; `openinference.span.kind`: OpenInference;
`langsmith.span.kind`: LangSmith). A scope then names one of the gen_ai.* families whose spans need their own
reading (openai-v2 and botocore hide cached tokens, OpenLIT keeps Anthropic's counts exclusive, ADK hides
the provider, pydantic-ai names its runs); any other scope (an app's own, OpenLLMetry's and the contrib
packages' `opentelemetry.instrumentation.*`, OpenInference's when the span carries gen_ai.* keys only)
tells nothing, and the keys decide: OpenLLMetry's own keys, pydantic-ai's run totals, OpenInference usage
without a span kind, else the OTel GenAI semantic conventions. So the same gen_ai.* span is read alike
under any scope but those few."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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
    LLM_TOKEN_COUNT_COMPLETION,
    LLM_TOKEN_COUNT_PROMPT,
    LLM_TOKEN_COUNT_TOTAL,
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

# Keys only OpenLLMetry writes, and OpenInference's usage keys (a span without a kind that carries them)
OPENLLMETRY_KEYS: frozenset[str] = frozenset({LLM_REQUEST_TYPE, TRACELOOP_SPAN_KIND, GEN_AI_IS_STREAMING,
                                              LLM_IS_STREAMING, LLM_USAGE_TOTAL_TOKENS})
AGGREGATE_KEYS: frozenset[str] = frozenset({GEN_AI_AGGREGATED_USAGE_INPUT_TOKENS,
                                            GEN_AI_AGGREGATED_USAGE_OUTPUT_TOKENS})
OPENINFERENCE_USAGE_KEYS: frozenset[str] = frozenset({LLM_TOKEN_COUNT_PROMPT, LLM_TOKEN_COUNT_COMPLETION,
                                                      LLM_TOKEN_COUNT_TOTAL})
# Key-told families that an OpenLIT `telemetry.sdk.name` (span or resource) turns into OpenLIT
VALUE_HINTED = frozenset({SOURCE_SEMCONV, SOURCE_OPENINFERENCE})


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
        if family is not None:
            return family
    if a.get(GEN_AI_SYSTEM) == ADK_FRAMEWORK_SYSTEM:
        return SOURCE_ADK
    family = family_of_keys(a)
    if family in VALUE_HINTED and (a.get(TELEMETRY_SDK_NAME) == "openlit" or is_openlit(span.resource)):
        return SOURCE_OPENLIT
    return family


def is_openlit(resource: Mapping[str, Any]) -> bool:
    """Whether a resource says OpenLIT made its spans (`telemetry.sdk.name`)."""
    return resource.get(TELEMETRY_SDK_NAME) == "openlit"


def family_of_keys(keys: Iterable[str] | Mapping[str, Any]) -> str:
    """The family the keys alone say, for a span whose scope and values name none."""
    if not OPENLLMETRY_KEYS.isdisjoint(keys):
        return SOURCE_OPENLLMETRY
    if not AGGREGATE_KEYS.isdisjoint(keys):
        return SOURCE_PYDANTIC_AI
    if not OPENINFERENCE_USAGE_KEYS.isdisjoint(keys):
        return SOURCE_OPENINFERENCE
    return SOURCE_SEMCONV


def family_of_scope(scope: str) -> str | None:
    """The gen_ai.* family an instrumentation scope name stands for; None when the scope does not tell (the
    keys decide: OpenLLMetry, the contrib `opentelemetry.instrumentation.*` packages, OpenInference, any
    app's own scope)."""
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
    return None

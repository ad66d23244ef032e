"""pydantic-ai / Logfire: agent runs carry their model requests' totals (skipped as aggregates)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from genai_meter.conventions.keys import (
    GEN_AI_AGGREGATED_USAGE_INPUT_TOKENS,
    GEN_AI_AGGREGATED_USAGE_OUTPUT_TOKENS,
    GEN_AI_TOOL_NAME,
    PYDANTIC_AI_AGENT_NAME,
)
from genai_meter.records import SpanRecord


def is_run_totals(a: Mapping[str, Any]) -> bool:
    """An agent run span: gen_ai.aggregated_usage.* repeats its model requests' usage."""
    return GEN_AI_AGGREGATED_USAGE_INPUT_TOKENS in a or GEN_AI_AGGREGATED_USAGE_OUTPUT_TOKENS in a


def fallback_operation(span: SpanRecord, a: Mapping[str, Any]) -> str | None:
    """Legacy agent run spans (totals in gen_ai.usage.*) and tool spans name no operation."""
    if span.name == "agent run" or PYDANTIC_AI_AGENT_NAME in a:
        return "invoke_agent"
    if GEN_AI_TOOL_NAME in a:
        return "execute_tool"
    return None

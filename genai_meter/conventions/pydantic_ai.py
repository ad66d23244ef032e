"""pydantic-ai / Logfire: agent runs carry their model requests' totals (skipped as aggregates); a model
request's audio (and, from Google, image and video) tokens are `gen_ai.usage.details.*`, parts of its totals."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from genai_meter.conventions.keys import (
    GEN_AI_AGGREGATED_USAGE_INPUT_TOKENS,
    GEN_AI_AGGREGATED_USAGE_OUTPUT_TOKENS,
    GEN_AI_TOOL_NAME,
    PYDANTIC_AI_AGENT_NAME,
    PYDANTIC_AI_DETAILS_PREFIX,
)
from genai_meter.conventions.reading import Reading
from genai_meter.conventions.values import count_value
from genai_meter.records import SpanRecord

# gen_ai.usage.details.<name> -> genai-prices usage key, RequestUsage's own fields first (then Google's
# per-modality details, which repeat the audio ones)
DETAIL_UNITS: tuple[tuple[str, str], ...] = tuple((PYDANTIC_AI_DETAILS_PREFIX + name, unit) for name, unit in (
    ("input_audio_tokens", "input_audio_tokens"), ("cache_audio_read_tokens", "cache_audio_read_tokens"),
    ("output_audio_tokens", "output_audio_tokens"),
    ("audio_prompt_tokens", "input_audio_tokens"), ("image_prompt_tokens", "input_image_tokens"),
    ("video_prompt_tokens", "input_video_tokens"), ("audio_cache_tokens", "cache_audio_read_tokens"),
    ("image_cache_tokens", "cache_image_read_tokens"), ("video_cache_tokens", "cache_video_read_tokens"),
    ("audio_candidates_tokens", "output_audio_tokens"), ("image_candidates_tokens", "output_image_tokens"),
    ("video_candidates_tokens", "output_video_tokens"),
))


def details(a: Mapping[str, Any], reading: Reading, provider_raw: object) -> None:
    """The modality details of a pydantic-ai model request (parts of its input, cache reads, output)."""
    found: dict[str, int] = {}
    for key, unit in DETAIL_UNITS:
        count = count_value(a.get(key))
        if count and unit not in found:
            found[unit] = count
    if found:
        reading.details = found


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

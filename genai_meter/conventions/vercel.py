"""Vercel AI SDK 4.x, 5.x and 6.x: `*.doGenerate`/`*.doStream`/`*.doEmbed` spans are model calls."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from genai_meter import contract
from genai_meter.conventions.bedrock import bedrock_usage
from genai_meter.conventions.keys import (
    AI_MODEL_ID,
    AI_MODEL_PROVIDER,
    AI_OPERATION_ID,
    AI_RESPONSE_MODEL,
    AI_RESPONSE_MS_TO_FIRST_CHUNK,
    AI_RESPONSE_PROVIDER_METADATA,
    AI_STREAM_MS_TO_FIRST_CHUNK,
    AI_USAGE_CACHED_INPUT_TOKENS,
    AI_USAGE_COMPLETION_TOKENS,
    AI_USAGE_INPUT_CACHE_READ_TOKENS,
    AI_USAGE_INPUT_CACHE_WRITE_TOKENS,
    AI_USAGE_INPUT_NO_CACHE_TOKENS,
    AI_USAGE_INPUT_TOKENS,
    AI_USAGE_OUTPUT_REASONING_TOKENS,
    AI_USAGE_OUTPUT_TOKENS,
    AI_USAGE_PROMPT_TOKENS,
    AI_USAGE_REASONING_TOKENS,
    AI_USAGE_TOKENS,
    AI_USAGE_TOTAL_TOKENS,
    GEN_AI_REQUEST_MODEL,
    GEN_AI_RESPONSE_MODEL,
    GEN_AI_SYSTEM,
    GEN_AI_USAGE_COMPLETION_TOKENS,
    GEN_AI_USAGE_INPUT_TOKENS,
    GEN_AI_USAGE_OUTPUT_TOKENS,
    GEN_AI_USAGE_PROMPT_TOKENS,
)
from genai_meter.conventions.price_context import normal_tier
from genai_meter.conventions.reading import Reading
from genai_meter.conventions.tables import (
    CACHE_EXCLUSIVE_PROVIDERS,
    CACHING_PROVIDERS,
    SOURCE_VERCEL,
    normalize_provider,
)
from genai_meter.conventions.values import count_value, first_int, seconds
from genai_meter.records import SpanRecord


def read_vercel(span: SpanRecord, a: Mapping[str, Any], source: str) -> Reading | str:
    """Vercel AI SDK: ``*.doGenerate``/``*.doStream``/``*.doEmbed`` are model calls; wrappers repeat them."""
    operation_id = a.get(AI_OPERATION_ID)
    step = operation_id.rsplit(".", 1)[-1] if isinstance(operation_id, str) else ""
    if len(step) > 2 and step.startswith("do") and step[2].isupper():
        operation = {"Embed": "embeddings", "Rerank": "rerank"}.get(step[2:], "chat")
    elif step == "toolCall":
        return contract.SKIP_NON_INFERENCE
    else:
        return contract.SKIP_AGGREGATE  # ai.generateText, ai.streamText, ai.embed, ...: repeat their do* spans
    reading = Reading(SOURCE_VERCEL, operation)
    provider_raw = a.get(AI_MODEL_PROVIDER) or a.get(GEN_AI_SYSTEM)
    reading.provider = normalize_provider(provider_raw)
    reading.model = (a.get(AI_RESPONSE_MODEL) or a.get(GEN_AI_RESPONSE_MODEL) or a.get(AI_MODEL_ID)
                     or a.get(GEN_AI_REQUEST_MODEL))
    exclusive_api = reading.provider in CACHE_EXCLUSIVE_PROVIDERS or (
        isinstance(provider_raw, str) and "anthropic" in provider_raw.lower())
    if AI_USAGE_INPUT_CACHE_READ_TOKENS in a or AI_USAGE_INPUT_CACHE_WRITE_TOKENS in a \
            or AI_USAGE_INPUT_NO_CACHE_TOKENS in a:
        vercel_v6_tokens(a, reading)
    elif AI_USAGE_INPUT_TOKENS in a or AI_USAGE_OUTPUT_TOKENS in a:
        vercel_v5_tokens(a, reading, exclusive_api)
    else:
        vercel_v4_tokens(a, reading, exclusive_api)
    if operation == "embeddings" and reading.inp is None:
        reading.inp = first_int(a, (AI_USAGE_TOKENS, AI_USAGE_TOTAL_TOKENS))
    ttft = seconds(a.get(AI_RESPONSE_MS_TO_FIRST_CHUNK), 1000)  # milliseconds
    reading.ttft_s = ttft if ttft is not None else seconds(a.get(AI_STREAM_MS_TO_FIRST_CHUNK), 1000)
    return reading


def vercel_v6_tokens(a: Mapping[str, Any], reading: Reading) -> None:
    """AI SDK 6: inputTokens is the cache-inclusive total, with an explicit breakdown."""
    reading.inp = first_int(a, (AI_USAGE_INPUT_TOKENS, GEN_AI_USAGE_INPUT_TOKENS))
    reading.out = first_int(a, (AI_USAGE_OUTPUT_TOKENS, GEN_AI_USAGE_OUTPUT_TOKENS))
    reading.total = count_value(a.get(AI_USAGE_TOTAL_TOKENS))
    reading.cache_read = count_value(a.get(AI_USAGE_INPUT_CACHE_READ_TOKENS))
    reading.cache_write = count_value(a.get(AI_USAGE_INPUT_CACHE_WRITE_TOKENS))
    reading.reasoning = first_int(a, (AI_USAGE_OUTPUT_REASONING_TOKENS, AI_USAGE_REASONING_TOKENS))
    if reading.inp is None:
        no_cache = count_value(a.get(AI_USAGE_INPUT_NO_CACHE_TOKENS))
        if no_cache is not None:
            reading.inp = no_cache + (reading.cache_read or 0) + (reading.cache_write or 0)
    anthropic_details(vercel_metadata(a) if AI_RESPONSE_PROVIDER_METADATA in a else None, reading)


def vercel_v5_tokens(a: Mapping[str, Any], reading: Reading, exclusive_api: bool) -> None:
    """AI SDK 5: inputTokens is what the provider API reports: cache-inclusive for OpenAI and Google,
    cache-exclusive for Anthropic and Bedrock (whose cache writes are only in providerMetadata)."""
    reading.inp = first_int(a, (AI_USAGE_INPUT_TOKENS, GEN_AI_USAGE_INPUT_TOKENS))
    reading.out = first_int(a, (AI_USAGE_OUTPUT_TOKENS, GEN_AI_USAGE_OUTPUT_TOKENS))
    reading.total = count_value(a.get(AI_USAGE_TOTAL_TOKENS))
    reading.cache_read = count_value(a.get(AI_USAGE_CACHED_INPUT_TOKENS))
    reading.reasoning = count_value(a.get(AI_USAGE_REASONING_TOKENS))
    if exclusive_api:
        reading.inclusive = False
        metadata = vercel_metadata(a)
        reading.cache_write = metadata_cache_write(metadata)
        anthropic_details(metadata, reading)


def vercel_v4_tokens(a: Mapping[str, Any], reading: Reading, exclusive_api: bool) -> None:
    """AI SDK 4: prompt/completion tokens only; cache counts only in providerMetadata."""
    reading.inp = first_int(a, (AI_USAGE_PROMPT_TOKENS, GEN_AI_USAGE_INPUT_TOKENS, GEN_AI_USAGE_PROMPT_TOKENS))
    reading.out = first_int(a, (AI_USAGE_COMPLETION_TOKENS, GEN_AI_USAGE_OUTPUT_TOKENS,
                                 GEN_AI_USAGE_COMPLETION_TOKENS))
    reading.total = count_value(a.get(AI_USAGE_TOTAL_TOKENS))
    metadata = vercel_metadata(a)
    if metadata is not None:
        openai = metadata.get("openai") or metadata.get("azure")
        if isinstance(openai, dict):  # cachedPromptTokens is a part of promptTokens
            reading.cache_read = count_value(openai.get("cachedPromptTokens"))
            reading.reasoning = count_value(openai.get("reasoningTokens"))
        anthropic = metadata.get("anthropic")
        if isinstance(anthropic, dict):  # Anthropic's promptTokens exclude both cache counts
            reading.cache_read = count_value(anthropic.get("cacheReadInputTokens"))
            reading.cache_write = count_value(anthropic.get("cacheCreationInputTokens"))
            anthropic_details(metadata, reading)
        bedrock = bedrock_usage(metadata)
        if bedrock is not None:
            reading.cache_read = count_value(bedrock.get("cacheReadInputTokens"))
            reading.cache_write = count_value(bedrock.get("cacheWriteInputTokens"))
    reading.inclusive = not exclusive_api
    reading.cache_unknown = (reading.cache_read is None and reading.cache_write is None
                             and reading.provider in CACHING_PROVIDERS)


def vercel_metadata(a: Mapping[str, Any]) -> dict[str, Any] | None:
    """The parsed ai.response.providerMetadata (usage counters only are read), or None."""
    raw = a.get(AI_RESPONSE_PROVIDER_METADATA)
    if not isinstance(raw, str) or not raw or len(raw) > 65536:
        return None
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def metadata_cache_write(metadata: dict[str, Any] | None) -> int | None:
    if metadata is None:
        return None
    anthropic = metadata.get("anthropic")
    if isinstance(anthropic, dict):
        value = count_value(anthropic.get("cacheCreationInputTokens"))
        if value is None and isinstance(anthropic.get("usage"), dict):
            value = count_value(anthropic["usage"].get("cache_creation_input_tokens"))
        return value
    bedrock = bedrock_usage(metadata)
    return count_value(bedrock.get("cacheWriteInputTokens")) if bedrock is not None else None


def anthropic_details(metadata: dict[str, Any] | None, reading: Reading) -> None:
    """What Anthropic's raw usage in providerMetadata adds: the tier it served the call at (`service_tier`:
    standard, priority, batch), the 1-hour part of the cache writes (`cache_creation`) and the web searches
    its server tools made (`server_tool_use.web_search_requests`, billed per search)."""
    if metadata is None:
        return
    anthropic = metadata.get("anthropic")
    usage = anthropic.get("usage") if isinstance(anthropic, dict) else None
    if not isinstance(usage, dict):
        return
    tier = usage.get("service_tier")
    if tier is not None:
        reading.service_tier = normal_tier(tier)
    details: dict[str, int] = {}
    creation = usage.get("cache_creation")
    if isinstance(creation, dict):
        one_hour = count_value(creation.get("ephemeral_1h_input_tokens"))
        if one_hour:
            details["cache_write_1h_tokens"] = one_hour
    tools = usage.get("server_tool_use")
    if isinstance(tools, dict):
        searches = count_value(tools.get("web_search_requests"))
        if searches:
            details["web_searches"] = searches
    if details:
        reading.details = details
